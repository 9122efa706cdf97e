"""Run every pipeline stage at one scale, each beside its floor, and write ``results.json``.

Each run is ``orchestration.stages.run_pipeline``, the stages Dagster wraps and the scenario runner
calls, in their one order, each timed as it passes; nothing here has its own fast path. A first run at the end of the
generated history does all the work (every user enters every segment); a second run an hour
later adds 1% new events, landed through ``land_messages``, and measures incremental work.
Then the HTTP collector is loaded beside its floor (``collector_stage.py``). Last,
``dagster dev`` runs on the same workspace and one landed event is timed to its email
with the sensor running (``latency.py``).

``warehouse="postgres"`` runs the same stages in a database of its own on the server of
``NUDGE_POSTGRES_URL`` (collation C, dropped afterwards), each warehouse floor being the same
compiled SQL run directly on Postgres (``floors.direct_sql``); the stages that never touch the
warehouse, and the latency stage, are skipped there with a line saying so.
"""

from __future__ import annotations

import json
import platform
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from nudge.core.landing.loader import landing_files
from nudge.core.landing.writer import land_messages
from nudge.core.warehouse.connection import connect
from nudge.core.warehouse.dbt import NodeResult
from nudge.core.warehouse.postgres import database_of_its_own
from nudge.core.warehouse.settings import postgres_address
from nudge.core.workspace import Workspace
from nudge.devtools.bench import floors
from nudge.devtools.bench.collector_stage import CONNECTIONS, measure_collector
from nudge.devtools.bench.generator import (
    end_of_data,
    generate_landing,
    incremental_as_of,
    incremental_messages,
)
from nudge.devtools.bench.http_send import measure_http_send
from nudge.devtools.bench.latency import measure_latency
from nudge.devtools.bench.measure import measured
from nudge.devtools.bench.scales import Scale
from nudge.devtools.smtp_sink import SmtpSink
from orchestration.instance import ensure_instance
from orchestration.stages import Stage as PipelineStage
from orchestration.stages import new_run_id, prepare_workspace, run_pipeline
from senders.email import SmtpEmailProvider, SmtpSettings

BENCH_CONTENT_DIR = Path(__file__).resolve().parent / "content"
SENDER = "nudge-bench <bench@example.com>"
_SEGMENT_NODES = ("fct_segment_memberships",)
_DIFF_NODES = ("fct_segment_membership_history",)
# Messages and threads of the HTTP provider stage (the same at every scale: it measures the
# dispatch's overhead per message against the provider's latency, not the data's size).
HTTP_SEND_MESSAGES = 3_000
HTTP_CONCURRENCY = 128
# How many of a build's slowest nodes results.json lists (info.slowest_nodes), for profiling.
SLOWEST_NODES = 15
# Stages not run on Postgres, and why (printed, and kept in results.json as info.skipped).
SKIPPED_ON_POSTGRES = {
    "collector": "the collector appends to the landing area and never opens the warehouse",
    "http_send": "it measures dispatch against an HTTP provider's latency in a workspace of its "
    "own; the warehouse's part of sending is the send stages",
    "latency": "dagster dev with the sensor is timed on DuckDB only so far",
}


@dataclass
class Stage:
    seconds: float
    floor_seconds: float | None
    ratio: float | None
    peak_rss_mb: float | None
    rows: int | None
    note: str = ""


def _stage(
    seconds: float, floor: float | None, rss: float | None, rows: int | None, note: str = ""
) -> Stage:
    ratio = round(seconds / floor, 2) if floor else None
    # To the microsecond: at the tiny scale a floor can take under half a millisecond, which
    # rounded to the millisecond would read as no floor at all.
    floor = None if floor is None else round(floor, 6)
    return Stage(round(seconds, 6), floor, ratio, rss, rows, note)


class BenchRun:
    """One benchmark at one scale in a fresh workspace under ``work_dir``."""

    def __init__(
        self, scale: Scale, work_dir: Path, progress: Callable[[str], None], warehouse: str
    ) -> None:
        self.scale = scale
        self.warehouse = warehouse
        self.workspace = Workspace(home=work_dir / "workspace", content_dir=BENCH_CONTENT_DIR)
        self.scratch = work_dir / "scratch"
        self.progress = progress
        self.stages: dict[str, Stage] = {}
        self.info: dict[str, Any] = {}

    def record(self, name: str, stage: Stage) -> None:
        self.stages[name] = stage
        floor = "" if stage.floor_seconds is None else f", floor {stage.floor_seconds:.2f} s"
        ratio = "" if stage.ratio is None else f", ratio {stage.ratio:.2f}"
        self.progress(
            f"  {name:28} {stage.seconds:8.2f} s{floor}{ratio}, peak {stage.peak_rss_mb} MB, "
            f"rows {stage.rows}"
        )

    # -- set-up ------------------------------------------------------------------------------

    def prepare(self) -> None:
        shutil.rmtree(self.workspace.home, ignore_errors=True)
        shutil.rmtree(self.scratch, ignore_errors=True)
        ensure_instance(self.workspace.ensure())
        scale = self.scale
        self.progress(f"generating {scale.users:,} users, about {scale.events:,} events")
        with measured() as m:
            rows = generate_landing(
                self.workspace.events_landing_dir,
                self.scratch,
                users=scale.users,
                events=scale.events,
                days=scale.days,
                end=end_of_data(),
            )
        self.info["generated_rows"] = rows
        self.info["generate_seconds"] = m.seconds
        self.progress(f"  generated {rows:,} landing rows in {m.seconds:.1f} s")
        with measured() as m:
            self.content, self.project = prepare_workspace(self.workspace)
        self.info["parse_seconds"] = m.seconds
        self.progress(f"  assembled and parsed the dbt project in {m.seconds:.1f} s")

    # -- stages ------------------------------------------------------------------------------

    def load(self, name: str, call: Callable[[], Any]) -> Any:
        files = landing_files(self.workspace.events_landing_dir)
        with connect(self.workspace.warehouse_path) as con:
            done = {r[0] for r in con.execute("select file_name from raw.loaded_files").fetchall()}
        new = [path for name, path in files.items() if name not in done]
        with measured() as m:
            loaded = call()
        floor = floors.load_floor(self.scratch / "load-floor.duckdb", new)
        self.record(name, _stage(m.seconds, floor, m.peak_rss_mb, loaded.rows))
        return loaded

    def build(self, prefix: str, call: Callable[[], list[NodeResult]]) -> list[NodeResult]:
        with measured() as m:
            nodes = call()
        self._warehouse_stages(prefix, nodes, m.seconds, m.peak_rss_mb)
        return nodes

    def _warehouse_stages(
        self, prefix: str, nodes: list[NodeResult], seconds: float, rss: float | None
    ) -> float:
        manifest = self.project.manifest()
        node_floor = floors.sql_floor(
            self.workspace.warehouse_path, manifest, [n.unique_id for n in nodes]
        )
        total_floor = sum(node_floor.values())
        models = [n for n in nodes if n.resource_type == "model"]
        slowest = sorted(nodes, key=lambda n: n.execution_time, reverse=True)[:SLOWEST_NODES]
        self.info.setdefault("slowest_nodes", {})[f"{prefix}dbt_build"] = {
            n.name: {
                "seconds": round(n.execution_time, 2),
                "floor_seconds": round(node_floor.get(n.unique_id, 0.0), 2),
            }
            for n in slowest
        }
        self.record(
            f"{prefix}dbt_build",
            _stage(
                seconds,
                total_floor,
                rss,
                len(nodes),
                "wall time of the whole build (models and tests; rows = nodes)",
            ),
        )

        def part(selected: list[NodeResult], name: str, note: str) -> None:
            spent = sum(n.execution_time for n in selected)
            floor = sum(node_floor.get(n.unique_id, 0.0) for n in selected)
            rows = self._rows(selected)
            self.record(f"{prefix}{name}", _stage(spent, floor, None, rows, note))

        segment_ids = {
            uid for uid, node in manifest.nodes.items() if "segment" in (node.tags or [])
        }
        part(
            [n for n in models if n.unique_id in segment_ids or n.name in _SEGMENT_NODES],
            "segments",
            "dbt node time of every segment model and the membership union (rows = memberships)",
        )
        part(
            [n for n in models if n.name in _DIFF_NODES],
            "eligibility_diff",
            "dbt node time of the membership history: who entered and left (rows = intervals)",
        )
        return total_floor

    def _rows(self, nodes: Iterable[NodeResult]) -> int | None:
        manifest = self.project.manifest()
        names = [manifest.nodes[n.unique_id].name for n in nodes]
        if any(name in _DIFF_NODES for name in names):
            table = "marts.fct_segment_membership_history"
        elif any(name in _SEGMENT_NODES for name in names):
            table = "marts.fct_segment_memberships"
        else:
            return None
        with connect(self.workspace.warehouse_path) as con:
            return con.execute(f"select count(*) from {table}").fetchone()[0]

    def journeys(self, name: str, run_id: str, call: Callable[[], Any]) -> Any:
        with measured() as m:
            summary = call()
        floor = floors.journeys_floor(self.workspace.warehouse_path, run_id)
        with connect(self.workspace.warehouse_path) as con:
            outbox = con.execute(
                "select count(*) from nudge.outbox where run_id = ?", [run_id]
            ).fetchone()[0]
            entries = con.execute(
                "select count(*) from nudge.journey_transitions "
                "where run_id = ? and action = 'entered'",
                [run_id],
            ).fetchone()[0]
        self.info.setdefault("journey_entries", {})[name] = entries
        note = f"{entries} entries admitted, rows = outbox rows planned"
        self.record(name, _stage(m.seconds, floor, m.peak_rss_mb, outbox, note))
        return summary

    def send(self, name: str, sink: SmtpSink, call: Callable[[], Any]) -> Any:
        with measured() as m:
            summary = call()
        received = sink.messages()
        floor = floors.send_floor(sink.host, sink.port, "bench@example.com", received)
        sent = summary.total("sent")
        note = f"{sent} sent, {len(received)} received by the SMTP server; email channel only"
        self.record(name, _stage(m.seconds, floor, m.peak_rss_mb, len(received), note))
        return summary

    def http_send(self, name: str) -> None:
        """Email to a local HTTP provider answering after 50 ms, against a bare requests loop at
        the same concurrency (``nudge.devtools.bench.http_send``)."""
        if self.skipped(name):
            return
        messages = min(self.scale.users, HTTP_SEND_MESSAGES)
        with measured() as m:
            result = measure_http_send(
                self.scratch / "http-send", messages=messages, concurrency=HTTP_CONCURRENCY
            )
        rate, floor_rate = result.sent / result.seconds, messages / result.floor_seconds
        self.info["http_send"] = {
            "messages_per_second": round(rate),
            "floor_messages_per_second": round(floor_rate),
            "concurrency": HTTP_CONCURRENCY,
            "provider_latency_seconds": 0.05,
        }
        note = (
            f"{result.sent} sent, {result.received} received by a local HTTP provider answering "
            f"after 50 ms: {rate:,.0f} messages/s; floor: a bare requests loop, "
            f"{HTTP_CONCURRENCY} threads, {floor_rate:,.0f} requests/s"
        )
        stage = _stage(result.seconds, result.floor_seconds, m.peak_rss_mb, result.received, note)
        self.record(name, stage)

    def reports(self, name: str, call: Callable[[], list[NodeResult]]) -> list[NodeResult]:
        with measured() as m:
            nodes = call()
        floor = sum(
            floors.sql_floor(
                self.workspace.warehouse_path,
                self.project.manifest(),
                [n.unique_id for n in nodes],
            ).values()
        )
        self.record(name, _stage(m.seconds, floor, m.peak_rss_mb, len(nodes)))
        return nodes

    def pipeline_run(self, prefix: str, as_of: datetime) -> None:
        """One ``run_pipeline`` at ``as_of``, every stage timed and recorded under ``prefix``
        (email to a local SMTP sink)."""
        run_id = new_run_id(as_of, "bench")
        maildir = self.scratch / f"mail-{prefix}send"
        sink = SmtpSink("127.0.0.1", 0, maildir).start()

        def timed(stage: PipelineStage, call: Callable[[], Any]) -> Any:
            match stage:
                case PipelineStage.LOAD:
                    return self.load(f"{prefix}load", call)
                case PipelineStage.BUILD_MODELS:
                    return self.build(prefix, call)
                case PipelineStage.PLAN_JOURNEYS:
                    return self.journeys(f"{prefix}journeys", run_id, call)
                case PipelineStage.SEND:
                    return self.send(f"{prefix}send", sink, call)
                case PipelineStage.BUILD_REPORTS:
                    return self.reports(f"{prefix}reports", call)

        try:
            provider = SmtpEmailProvider(
                SmtpSettings(host=sink.host, port=sink.port, sender=SENDER)
            )
            run_pipeline(
                self.workspace,
                self.content,
                self.project,
                {"email": provider},
                as_of=as_of,
                run_id=run_id,
                around=timed,
            )
        finally:
            sink.stop()
        shutil.rmtree(maildir, ignore_errors=True)

    def floor_of(self, names: Iterable[str]) -> float:
        return sum(self.stages[name].floor_seconds or 0.0 for name in names)

    def landing(self, name: str, messages: list[dict[str, Any]]) -> None:
        with measured() as m:
            result = land_messages(self.workspace.events_landing_dir, messages)
        floor = floors.landing_floor(self.scratch / "landing-floor.ndjson", messages)
        note = "the real land_messages path: validate, normalise, write parquet"
        self.record(name, _stage(m.seconds, floor, m.peak_rss_mb, result.accepted, note))

    # -- runs --------------------------------------------------------------------------------

    def full_run(self) -> None:
        as_of = end_of_data()
        self.progress(f"full run at as_of {as_of.isoformat()}")
        self.pipeline_run("", as_of)
        parts = ("load", "dbt_build", "journeys", "reports")
        spent, floor = sum(self.stages[n].seconds for n in parts), self.floor_of(parts)
        self.record(
            "full_run_excluding_send",
            _stage(spent, floor, None, None, "load + dbt build + journeys + reports"),
        )

    def incremental_run(self) -> None:
        scale = self.scale
        as_of = incremental_as_of()
        self.progress(f"incremental run at as_of {as_of.isoformat()} with 1% new events")
        messages = incremental_messages(
            self.scratch,
            users=scale.users,
            events=scale.incremental_events,
            days=scale.days,
            end=end_of_data(),
            after=end_of_data(),
        )
        self.landing("landing", messages)
        self.pipeline_run("incremental_", as_of)
        parts = ("incremental_load", "incremental_dbt_build", "incremental_journeys",
                 "incremental_reports")  # fmt: skip
        spent, floor = sum(self.stages[n].seconds for n in parts), self.floor_of(parts)
        self.record(
            "incremental_run_excluding_send",
            _stage(
                spent,
                floor,
                None,
                scale.incremental_events,
                "floor: the same SQL recomputed in full; rows = new events",
            ),
        )

    def skipped(self, name: str) -> bool:
        """Whether stage ``name`` is skipped on this warehouse (saying so when it is)."""
        reason = SKIPPED_ON_POSTGRES.get(name) if self.warehouse == "postgres" else None
        if reason is not None:
            self.info.setdefault("skipped", {})[name] = reason
            self.progress(f"  {name}: skipped on {self.warehouse}: {reason}")
        return reason is not None

    def collector(self) -> None:
        if self.skipped("collector"):
            return
        self.progress("collector: nudge serve and its floor under the same HTTP loads")
        measured_loads = measure_collector(self.scratch)
        self.info["collector"] = measured_loads
        for name, sides in measured_loads.items():
            ours, floor = sides["collector"], sides["floor"]
            note = (
                f"{ours['requests_per_second']:,} requests/s, {ours['events_per_second']:,} "
                f"events/s, p50 {ours['p50_ms']} ms, p99 {ours['p99_ms']} ms (floor "
                f"{floor['requests_per_second']:,}/s, p50 {floor['p50_ms']} ms, p99 "
                f"{floor['p99_ms']} ms); server CPU {ours['server_cpu_us_per_event']} µs per "
                f"event (floor {floor['server_cpu_us_per_event']}); {CONNECTIONS} connections"
            )
            self.record(name, _stage(ours["seconds"], floor["seconds"], None, ours["events"], note))

    def latency(self, name: str) -> None:
        if self.skipped(name):
            return
        self.progress("latency: dagster dev on the bench workspace, one event landed, sensor on")
        result = measure_latency(
            self.workspace, self.scratch, sender=SENDER, progress=self.progress
        )
        self.info["latency"] = {
            "user_id": result.user_id,
            "run_id": result.run_id,
            "catch_up_run_seconds": result.catch_up_run_seconds,
            "seconds_after_landing": result.timeline,
        }
        note = (
            "one order_completed track call landed -> its order_followup email stored by the "
            "SMTP server, through the sensor and a Dagster run at the wall-clock as_of; no floor; "
            "peak RSS = dagster dev's process tree, sampled every 0.25 s"
        )
        self.record(name, _stage(result.seconds, None, result.peak_rss_mb, 1, note))


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        info["cpus"] = len(
            [x for x in Path("/proc/cpuinfo").read_text().splitlines() if x.startswith("processor")]
        )
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
        info["memory_gb"] = round(mem_kb / 1024 / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return info


@contextmanager
def bench_warehouse(kind: str, info: dict[str, Any]) -> Iterator[None]:
    """Nothing for DuckDB (the workspace holds its file); for Postgres a database of its own,
    named in ``info``, dropped when the block ends."""
    if kind != "postgres":
        yield
        return
    with database_of_its_own(f"nudge_bench_{uuid.uuid4().hex[:16]}") as url:
        info["postgres_database"] = postgres_address(url).dbname
        yield


def run_bench(
    scale: Scale,
    *,
    work_dir: Path,
    results_path: Path,
    progress: Callable[[str], None] = print,
    keep: bool = False,
    warehouse: str = "duckdb",
) -> dict[str, Any]:
    """Run the benchmark at ``scale`` on ``warehouse`` and write ``results_path``; returns the
    results."""
    started = time.perf_counter()
    bench = BenchRun(scale, work_dir, progress, warehouse)
    try:
        with bench_warehouse(warehouse, bench.info):
            progress(f"warehouse: {warehouse}")
            bench.prepare()
            bench.full_run()
            bench.incremental_run()
            bench.collector()
            bench.http_send("http_send")
            bench.latency("latency")
    finally:
        if not keep:
            shutil.rmtree(work_dir, ignore_errors=True)
    results = {
        "scale": scale.name,
        "warehouse": warehouse,
        "users": scale.users,
        "events": scale.events,
        "machine": machine(),
        "info": bench.info,
        "total_seconds": round(time.perf_counter() - started, 1),
        "stages": {name: asdict(stage) for name, stage in bench.stages.items()},
    }
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    progress(f"wrote {results_path} ({results['total_seconds']} s in all)")
    return results
