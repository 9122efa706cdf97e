"""The ``latency`` stage: one event landed -> its email at the SMTP server, with the sensor running.

After the benchmark's two runs, ``dagster dev`` is started from the repository's own
``workspace.yaml`` on the bench workspace, with the email resource pointed (through the
``NUDGE_SMTP_*`` variables that ``orchestration.resources`` reads) at a real local ``SmtpSink``.

Before that, one *catch-up* run at the wall-clock as_of (weeks after the generated history ends)
is made with ``nudge run`` in the same environment: it moves every time window on and sends what
that move causes, and it must succeed (the check that a run at the wall clock works after the bench
runs). The sensor ``new_landing_files`` starts after the landing files earlier runs loaded, so it
requests no run for the bench's files. Once it has skipped a tick ("no new landing files"), the
system is idle, and one ``order_completed`` track call (``amount`` 299, stamped now) is landed
through the real ``land_messages`` for a known user with an email. It starts the bench journey
``order_followup`` (event trigger ``amount >= 290``, re-entry always), whose first step sends the
transactional ``order_thanks`` email at once. The stage is the time from just before landing
until the SMTP server has stored an email to that user (the maildir is polled every 0.25 s).

It covers the sensor's interval (up to 5 s), queueing and launching the run (a new process that
imports the code location), the run's load, dbt build and journeys, and the send. There is no
floor: nothing cheaper does the same end to end, and the pipeline part alone is measured by the
``incremental_*`` stages. The timeline recorded beside it splits the wait from the run.
"""

from __future__ import annotations

import email.parser
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from nudge.core.clock import utc_now
from nudge.core.landing.writer import land_messages
from nudge.core.warehouse.connection import connect
from nudge.core.workspace import Workspace
from nudge.devtools.bench.dagster_dev import DagsterDev, RunInfo, tree_rss_mb
from nudge.devtools.smtp_sink import SmtpSink
from senders.unsubscribe import LOCAL_PUBLIC_URL, local_secret_key

SENSOR = "new_landing_files"
PING_EVENT = "order_completed"
PING_AMOUNT = (
    299  # order_followup's trigger needs amount >= 290 (nudge/devtools/bench/content/journeys.yml)
)
POLL_SECONDS = 0.25
NOTE_EVERY_SECONDS = 5.0


@dataclass
class LatencyResult:
    seconds: float
    peak_rss_mb: float | None
    user_id: str
    run_id: str
    catch_up_run_seconds: float | None
    # Seconds after landing: the tick that requested the run, its start and end, the email.
    timeline: dict[str, float] = field(default_factory=dict)


@dataclass
class _Deadline:
    seconds: float
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def check(self, dev: DagsterDev, what: str) -> None:
        if self.elapsed > self.seconds:
            raise dev.failure(f"{what}: nothing after {self.seconds:.0f} s")


def _latest_as_of(workspace: Workspace) -> datetime | None:
    with connect(workspace.warehouse_path, read_only=True) as con:
        return con.execute("select max(as_of) from nudge.runs").fetchone()[0]


def _ping_user(workspace: Workspace) -> tuple[str, str]:
    """A known user with an email (the same one every time for the same data)."""
    with connect(workspace.warehouse_path, read_only=True) as con:
        row = con.execute(
            """
            select user_id, email from marts.dim_users
            where email is not null and not coalesce(unsubscribed, false)
            order by user_id limit 1
            """
        ).fetchone()
    if row is None:
        raise RuntimeError("no user with an email in marts.dim_users to send the latency ping to")
    return row[0], row[1]


def _ping_message(user_id: str, now: datetime) -> dict[str, object]:
    return {
        "type": "track",
        "messageId": f"bench-latency-{uuid.uuid4().hex}",
        "userId": user_id,
        "event": PING_EVENT,
        "properties": {
            "order_id": f"latency-{now:%Y%m%dT%H%M%S}",
            "amount": PING_AMOUNT,
            "currency": "USD",
        },
        "timestamp": now.isoformat() + "Z",
    }


def _delivered_to(path: Path, address: str) -> bool:
    with open(path, "rb") as fh:
        headers = email.parser.BytesHeaderParser().parse(fh)
    return any(v.strip().lower() == address.lower() for v in headers.get_all("Delivered-To", []))


def _child_env(workspace: Workspace, sink: SmtpSink, sender: str) -> dict[str, str]:
    """This environment without any NUDGE_/DAGSTER_ setting of its own, pointed at the bench."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("NUDGE_", "DAGSTER_"))}
    return {
        **base,
        **workspace.env(),
        "NUDGE_EMAIL_PROVIDER": "smtp",
        "NUDGE_SMTP_HOST": sink.host,
        "NUDGE_SMTP_PORT": str(sink.port),
        "NUDGE_EMAIL_FROM": sender,
        "NUDGE_SECRET_KEY": local_secret_key(workspace.home / "secret_key"),
        "NUDGE_PUBLIC_URL": LOCAL_PUBLIC_URL,
    }


def _catch_up(env: dict[str, str], progress: Callable[[str], None]) -> float:
    """``nudge run`` at the wall-clock as_of in ``env``; its seconds. Raises if it fails."""
    progress("  catch-up run at the wall-clock as_of (nudge run)")
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "nudge.cli", "run"], env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
        raise RuntimeError(f"the catch-up run at the wall-clock as_of failed:\n{tail}")
    return time.perf_counter() - started


def _wait_for_idle_sensor(
    dev: DagsterDev, progress: Callable[[str], None], deadline: _Deadline, since: float
) -> tuple[dict[str, RunInfo], set[str]]:
    """Wait for the runs the sensor asked for (none when every landing file was loaded) to
    succeed, then for a tick that skipped after them.

    Only ticks from ``since`` on count (a kept workspace has those of earlier sessions). Returns
    the runs by id, and the ids of every run the ticks seen so far asked for.
    """
    runs: dict[str, RunInfo] = {}
    known: set[str] = set()
    next_note = 0.0
    while True:
        deadline.check(dev, "waiting for the sensor to tick with nothing new")
        all_ticks = dev.sensor_ticks(SENSOR)
        known |= {r for t in all_ticks for r in t.run_ids}
        ticks = [t for t in all_ticks if t.timestamp >= since]
        failed = [t for t in ticks if t.status == "FAILURE"]
        if failed:
            raise dev.failure(f"sensor {SENSOR} failed: {failed[0].error}")
        for run_id in {r for t in ticks for r in t.run_ids} | set(runs):
            if run_id not in runs or not runs[run_id].finished:
                runs[run_id] = dev.run(run_id)
        for run in runs.values():
            if run.status in ("FAILURE", "CANCELED"):
                raise dev.failure(f"the sensor's run {run.run_id} at the wall-clock as_of failed")
        pending = [r for r in runs.values() if not r.finished]
        settled_after = max((r.end_time or 0.0 for r in runs.values()), default=0.0)
        if not pending and any(
            t.status == "SKIPPED" and t.timestamp > settled_after for t in ticks
        ):
            return runs, known
        if deadline.elapsed >= next_note:
            state = (
                f"catch-up run {pending[0].run_id[:8]} {pending[0].status}"
                if pending
                else f"last tick {ticks[0].status}"
                if ticks
                else "no tick yet"
            )
            progress(f"  waiting for the sensor to go idle ({deadline.elapsed:.0f} s, {state})")
            next_note = deadline.elapsed + NOTE_EVERY_SECONDS
        time.sleep(1.0)


def _new_run(dev: DagsterDev, known: Collection[str]) -> tuple[float, RunInfo] | None:
    """The oldest tick that requested a run not in ``known``, and that run.

    Known runs are the catch-up's; the new one may come from a tick that began just before the
    landing and listed the folder just after it, so tick times are not compared with it.
    """
    for tick in reversed(dev.sensor_ticks(SENSOR)):
        new = [r for r in tick.run_ids if r not in known]
        if new:
            return tick.timestamp, dev.run(new[0])
    return None


def measure_latency(
    workspace: Workspace,
    scratch: Path,
    *,
    sender: str,
    progress: Callable[[str], None],
    timeout_seconds: float = 3600,
) -> LatencyResult:
    """Start ``dagster dev`` on ``workspace``, land one event, time it to its email; stop it all."""
    latest = _latest_as_of(workspace)
    if latest is not None and utc_now() <= latest:
        raise RuntimeError(
            f"the wall clock ({utc_now():%Y-%m-%dT%H:%M:%S}) is before the bench's last as_of "
            f"({latest:%Y-%m-%dT%H:%M:%S}): a sensor run would go back in time, which is refused"
        )
    user_id, address = _ping_user(workspace)
    sink = SmtpSink("127.0.0.1", 0, scratch / "mail-latency").start()
    env = _child_env(workspace, sink, sender)
    dev = DagsterDev(env, scratch / "dagster-dev.log")
    try:
        catch_up = round(_catch_up(env, progress), 3)
        progress(f"  the catch-up run at the wall-clock as_of took {catch_up} s")
        since = time.time()
        dev.start()
        up = dev.wait_until_up(300, progress)
        progress(f"  dagster dev answered after {up:.1f} s (log: {dev.log_path})")
        sensor_runs, known = _wait_for_idle_sensor(dev, progress, _Deadline(timeout_seconds), since)
        progress(f"  sensor idle after {len(sensor_runs)} run(s) of its own")
        before = set(sink.messages())  # the catch-up run's email
        landed_at = time.time()
        started = time.perf_counter()
        land_messages(workspace.events_landing_dir, [_ping_message(user_id, utc_now())])
        deadline = _Deadline(timeout_seconds)
        peak = _wait_for_email(dev, sink, before, address, known, progress, deadline)
        seconds = time.perf_counter() - started
        progress(f"  email to {address} received {seconds:.2f} s after landing")
        tick_at, run = _finished_run(dev, known, deadline)
    finally:
        dev.stop()
        sink.stop()
    timeline = {
        "sensor_tick": tick_at - landed_at,
        "run_start": (run.start_time or run.creation_time) - landed_at,
        "email": seconds,
        "run_end": (run.end_time or run.creation_time) - landed_at,
    }
    return LatencyResult(
        seconds=round(seconds, 3),
        peak_rss_mb=peak or None,
        user_id=user_id,
        run_id=run.run_id,
        catch_up_run_seconds=catch_up,
        timeline={k: round(v, 2) for k, v in timeline.items()},
    )


def _wait_for_email(
    dev: DagsterDev,
    sink: SmtpSink,
    before: Collection[Path],
    address: str,
    known: Collection[str],
    progress: Callable[[str], None],
    deadline: _Deadline,
) -> float:
    """Poll the maildir until a new email to ``address`` arrives; returns the tree's peak RSS
    (MB). ``before``: the messages already there; ``known``: the runs already there."""
    peak = 0.0
    next_note = NOTE_EVERY_SECONDS
    while True:
        peak = max(peak, tree_rss_mb(dev.pid))
        if any(p not in before and _delivered_to(p, address) for p in sink.messages()):
            return peak
        deadline.check(dev, f"waiting for the email to {address}")
        dev.check_alive()
        if deadline.elapsed >= next_note:
            found = _new_run(dev, known)
            state = f"run {found[1].run_id[:8]} {found[1].status}" if found else "no run yet"
            progress(f"  waiting for the email ({deadline.elapsed:.0f} s, {state})")
            next_note = deadline.elapsed + NOTE_EVERY_SECONDS
        time.sleep(POLL_SECONDS)


def _finished_run(
    dev: DagsterDev, known: Collection[str], deadline: _Deadline
) -> tuple[float, RunInfo]:
    """Wait (untimed) for the latency run to end; it must succeed. Returns its tick time and it."""
    while True:
        found = _new_run(dev, known)
        if found and found[1].finished:
            break
        deadline.check(dev, "waiting for the latency run to finish")
        time.sleep(1.0)
    if found[1].status != "SUCCESS":
        raise dev.failure(f"the latency run {found[1].run_id} ended {found[1].status}")
    return found
