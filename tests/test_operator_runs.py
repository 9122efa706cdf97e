"""What an operator sees of a run: one stage order, progress by stage, a summary, exit statuses."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orchestration.defs.stage_order import StageOrderError, check_stage_order, stage_tags
from orchestration.stages import Stage, run_stages

CONTENT = """
segments:
  - name: pro
    description: People on the pro plan.
    condition: {attribute: {name: plan, eq: pro}}
templates:
  - {name: hello, channel: email, subject: "Hi", html: "<p>Hi</p>"}
journeys:
  - name: pro_welcome
    trigger: {segment_entered: pro}
    steps: [{id: hello, send: {channel: email, template: hello}}]
  - name: pro_followup
    trigger: {segment_entered: pro}
    steps: [{id: later, wait: 1d}]
"""
EXIT_STAGE_FAILED, EXIT_EARLIER_AS_OF = 4, 5


def test_run_stages_calls_every_stage_once_in_the_declared_order() -> None:
    seen: list[Stage] = []
    calls = {stage: (lambda stage=stage: stage.value) for stage in reversed(Stage)}

    def around(stage: Stage, call):
        seen.append(stage)
        return call()

    results = run_stages(calls, around=around)
    assert seen == list(Stage)
    assert seen[0] is Stage.LOAD and seen[-1] is Stage.BUILD_REPORTS
    assert results == {stage: stage.value for stage in Stage}


def test_a_graph_that_breaks_the_stage_order_is_refused() -> None:
    @dg.asset(op_tags=stage_tags(Stage.SEND))
    def sent() -> None: ...

    @dg.asset(deps=[sent], op_tags=stage_tags(Stage.BUILD_MODELS))
    def model() -> None: ...

    with pytest.raises(
        StageOrderError, match=re.escape("model (build_models) depends on sent (send)")
    ):
        check_stage_order(dg.Definitions(assets=[sent, model]))

    @dg.asset
    def untagged() -> None: ...

    with pytest.raises(StageOrderError, match="no nudge/stage op tag"):
        check_stage_order(dg.Definitions(assets=[untagged]))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from orchestration.location import load_location

    content = tmp_path / "content"
    content.mkdir()
    (content / "defs.yml").write_text(CONTENT)
    monkeypatch.setenv("NUDGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NUDGE_CONTENT", str(content))
    monkeypatch.setenv("NUDGE_WAREHOUSE_PATH", str(tmp_path / "home" / "warehouse.duckdb"))
    load_location.cache_clear()
    yield tmp_path
    load_location.cache_clear()


def test_dagster_plans_every_journey_in_one_step_of_the_plan_stage(project: Path) -> None:
    from orchestration.definitions import build_definitions
    from orchestration.defs.stage_order import stage_of, stages_by_key

    defs = build_definitions()
    journey_keys = {
        dg.AssetKey(["journeys", "pro_welcome"]),
        dg.AssetKey(["journeys", "pro_followup"]),
    }
    planners = [
        a for a in defs.assets if isinstance(a, dg.AssetsDefinition) and journey_keys & a.keys
    ]
    assert len(planners) == 1, "each journey planned in its own step"
    assert journey_keys | {dg.AssetKey(["journeys", "state"])} <= planners[0].keys
    assert stage_of(planners[0]) is Stage.PLAN_JOURNEYS
    # the per-journey view stays: each journey its own group and its own segment lineage
    specs = {spec.key: spec for spec in planners[0].specs}
    welcome = specs[dg.AssetKey(["journeys", "pro_welcome"])]
    assert welcome.group_name == "journey_pro_welcome"
    assert dg.AssetKey(["segments", "pro"]) in {dep.asset_key for dep in welcome.deps}
    stages = stages_by_key(defs)
    assert stages[dg.AssetKey(["raw", "events"])] is Stage.LOAD
    assert stages[dg.AssetKey(["segments", "pro"])] is Stage.BUILD_MODELS
    assert stages[dg.AssetKey(["delivery", "email"])] is Stage.SEND
    assert stages[dg.AssetKey(["reports", "rpt_journey_entries"])] is Stage.BUILD_REPORTS


def nudge(tmp_path: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "NUDGE_HOME": str(tmp_path / "home"),
        "NUDGE_CONTENT": str(tmp_path / "content"),
        "NUDGE_SMTP_PORT": "9",  # nothing listens: email stays pending, quickly
    }
    return subprocess.run(
        [sys.executable, "-m", "nudge.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
    )


def run_rows(tmp_path: Path) -> list[tuple[str, str]]:
    path = tmp_path / "home" / "warehouse.duckdb"
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(
            "select strftime(as_of, '%Y-%m-%d %H:%M'), status from nudge.runs order by started_at"
        ).fetchall()


@pytest.mark.slow
def test_run_reports_by_stage_and_refuses_an_earlier_as_of(tmp_path: Path) -> None:
    (tmp_path / "content").mkdir()
    (tmp_path / "content" / "defs.yml").write_text(CONTENT)

    before = nudge(tmp_path, "segments")
    assert before.returncode == 1
    assert "run `nudge run`" in before.stderr and "nudge demo" in before.stderr
    assert "Traceback" not in before.stderr
    assert not (tmp_path / "home").exists(), "a read command created the workspace"
    profile = nudge(tmp_path, "profile", "u1")
    assert profile.returncode == 1 and "run `nudge run`" in profile.stderr

    events = tmp_path / "events.ndjson"
    events.write_text(
        json.dumps(
            {"type": "identify", "userId": "u1", "timestamp": "2026-01-01T00:00:00Z",
             "traits": {"plan": "pro", "email": "u1@example.com"}}
        )
    )  # fmt: skip
    assert nudge(tmp_path, "ingest", str(events)).returncode == 0

    run = nudge(tmp_path, "run", "--as-of", "2026-01-01T00:01:00Z")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "\x1b[" not in run.stdout + run.stderr, "ANSI colour codes without --verbose"
    stage_lines = [line for line in run.stdout.splitlines() if line.startswith("[")]
    assert stage_lines == [f"[{s.number}/5] {s.label}" for s in Stage]
    summary = run.stdout.split("journeys (entered / exited / completed):")[1]
    assert summary.splitlines()[1].split() == ["pro_followup", "1", "0", "0"]
    assert summary.splitlines()[2].split() == ["pro_welcome", "1", "0", "1"]
    assert "email      1 pending for a later run" in summary
    assert "left pending for the next run" in summary
    assert "where to look:" in summary
    assert "DEBUG" not in run.stdout and "STEP_START" not in run.stdout

    members = nudge(tmp_path, "segments", "members", "pro", "--limit", "10")
    assert members.returncode == 0 and members.stdout.split() == ["u1"]
    assert "members 1-1 of 1" in members.stderr
    typo = nudge(tmp_path, "segments", "members", "prp")
    assert typo.returncode == 1 and "did you mean 'pro'" in typo.stderr

    earlier = nudge(tmp_path, "run", "--as-of", "2025-12-01T00:00:00Z")
    assert earlier.returncode == EXIT_EARLIER_AS_OF
    assert earlier.stderr.count("\n") == 1, earlier.stderr
    assert "earlier than the last run (2026-01-01T00:01:00Z)" in earlier.stderr
    dry = nudge(tmp_path, "run", "--dry-run", "--as-of", "2025-12-01T00:00:00Z")
    assert dry.returncode == EXIT_EARLIER_AS_OF and "Traceback" not in dry.stderr
    assert run_rows(tmp_path) == [
        ("2026-01-01 00:01", "succeeded"),
        ("2025-12-01 00:00", "refused"),
    ]

    # --verbose adds Dagster's own log of every step to the same progress and summary.
    verbose = nudge(tmp_path, "run", "--verbose", "--as-of", "2026-01-01T00:01:30Z")
    assert verbose.returncode == 0, verbose.stdout + verbose.stderr
    assert "STEP_START" in verbose.stdout + verbose.stderr
    assert [line for line in verbose.stdout.splitlines() if line.startswith("[")] == stage_lines
    assert "where to look:" in verbose.stdout

    # A landing file that is not parquet: the load stage fails, later stages do not run.
    (tmp_path / "home" / "landing" / "events" / "zz-broken.parquet").write_text("not parquet")
    failed = nudge(tmp_path, "run", "--as-of", "2026-01-01T00:02:00Z")
    assert failed.returncode == EXIT_STAGE_FAILED, failed.stdout + failed.stderr
    assert "FAILED raw__events: " in failed.stdout and "zz-broken.parquet" in failed.stdout
    assert "[2/5]" not in failed.stdout
    assert "Error occurred while executing" not in failed.stdout
    assert run_rows(tmp_path)[-1] == ("2026-01-01 00:02", "failed")
    assert "running" not in {status for _, status in run_rows(tmp_path)}

    # A model dbt refuses to build: the progress names the model and says why and what to do;
    # dbt's own lines are in the run's log, not in the output.
    (tmp_path / "home" / "landing" / "events" / "zz-broken.parquet").unlink()
    with duckdb.connect(str(tmp_path / "home" / "warehouse.duckdb")) as con:
        con.execute("alter table staging.stg_events add column extra integer")
    refused = nudge(tmp_path, "run", "--as-of", "2026-01-01T00:03:00Z")
    assert refused.returncode == EXIT_STAGE_FAILED, refused.stdout + refused.stderr
    failed_lines = refused.stdout.split("FAILED dbt_models: ", 1)[1].splitlines()
    assert failed_lines[1].strip().startswith("model.nudge.stg_events: Compilation Error")
    assert "dbt build --full-refresh --select stg_events+" in failed_lines[2]
    assert "ERROR creating" not in refused.stdout and "> in macro" not in refused.stdout
    assert "nudge run --full-refresh" in failed_lines[2]

    # What it asks for: every model rebuilt from the calls, the membership history kept.
    history = "select * from marts.fct_segment_membership_history order by all"
    with duckdb.connect(str(tmp_path / "home" / "warehouse.duckdb"), read_only=True) as con:
        kept = con.execute(history).fetchall()
    rebuilt = nudge(tmp_path, "run", "--full-refresh", "--as-of", "2026-01-01T00:04:00Z")
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert "(every dbt model rebuilt from the calls)" in rebuilt.stdout
    with duckdb.connect(str(tmp_path / "home" / "warehouse.duckdb"), read_only=True) as con:
        assert "extra" not in {
            row[0] for row in con.execute("describe staging.stg_events").fetchall()
        }
        assert con.execute(history).fetchall() == kept and kept
    assert nudge(tmp_path, "run", "--as-of", "2026-01-01T00:05:00Z").returncode == 0


def test_dagster_describes_segments_as_their_authors_did(project: Path) -> None:
    from nudge.core.segments.manual import upload_manual_segment
    from nudge.core.workspace import Workspace
    from orchestration.definitions import build_definitions

    members = project / "vip.csv"
    members.write_text("user_id\nu1\n")
    workspace = Workspace.from_env().ensure()
    upload_manual_segment(
        workspace, "vip", members, uploaded_at=datetime(2026, 1, 1), taken_names={"pro"}
    )
    graph = build_definitions().resolve_asset_graph()

    pro = graph.get(dg.AssetKey(["segments", "pro"]))
    assert pro.description == "People on the pro plan."
    vip = graph.get(dg.AssetKey(["segments", "vip"]))
    assert vip.group_name == "segments"
    assert vip.description.startswith("Manual segment vip: ")
    for table in ("manual_segment_members", "manual_segment_uploads"):
        source = graph.get(dg.AssetKey(["manual_segments", table]))
        assert source.group_name == "segments" and source.description, table
    described = {
        key.to_user_string(): graph.get(key).description for key in graph.get_all_asset_keys()
    }
    assert not [k for k, d in described.items() if d and d.startswith("dbt model ")]
