"""`dagster dev -w workspace.yaml` loads one asset graph from the landing area to the reports."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from nudge.core.landing.writer import land_messages
from nudge.devtools.bench.dagster_dev import DagsterDev, Tick
from nudge.devtools.smtp_sink import SmtpSink

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
QUERY = """
{
  workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } }
  assetNodes { assetKey { path } dependencyKeys { path } }
}
"""
RUNS_QUERY = "{ runsOrError { ... on Runs { results { runId } } } }"


def test_dagster_dev_loads_the_whole_graph(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {
        **os.environ,
        "NUDGE_HOME": str(home),
        "NUDGE_CONTENT": str(REPO / "content"),
        "DAGSTER_HOME": str(home / "dagster"),
    }
    subprocess.run([sys.executable, "-m", "nudge.cli", "validate"], env=env, check=True)
    with DagsterDev(env, tmp_path / "dagster-dev.log") as dev:
        dev.wait_until_up(180, progress=lambda _: None)
        data = dev.graphql(QUERY, {})

    [location] = data["workspaceOrError"]["locationEntries"]
    assert (location["name"], location["loadStatus"]) == ("nudge", "LOADED")
    parents = {
        "/".join(node["assetKey"]["path"]): {"/".join(d["path"]) for d in node["dependencyKeys"]}
        for node in data["assetNodes"]
    }
    upstream: set[str] = set()
    frontier = {"reports/rpt_messages_by_journey_step"}
    while frontier:
        key = frontier.pop()
        upstream.add(key)
        frontier |= parents.get(key, set()) - upstream
    for key in (
        "landing/events",
        "raw/events",
        "marts/dim_users",
        "segments/new_signups",
        "journeys/onboarding",
        "delivery/outbox",
        "delivery/email",
        "delivery/ledger",
    ):
        assert key in upstream, f"{key} is not upstream of the reports in the UI's graph"


def finished_ticks(dev: DagsterDev) -> list[Tick]:
    return [t for t in dev.sensor_ticks("new_landing_files") if t.status != "STARTED"]


def test_opening_the_ui_on_a_loaded_workspace_starts_no_run(
    tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    home = tmp_path / "home"
    env = {
        **os.environ,
        "NUDGE_HOME": str(home),
        "NUDGE_CONTENT": str(REPO / "content"),
        "DAGSTER_HOME": str(home / "dagster"),
        "NUDGE_EMAIL_PROVIDER": "smtp",
        "NUDGE_SMTP_HOST": smtp_sink.host,
        "NUDGE_SMTP_PORT": str(smtp_sink.port),
    }
    stamp = datetime(2026, 3, 2, 9, 0).isoformat() + "Z"
    traits = {"email": "ada@example.com", "first_name": "Ada", "plan": "pro"}
    land_messages(
        home / "landing" / "events",
        [
            {"type": "identify", "userId": "ada", "timestamp": stamp, "traits": traits},
            {"type": "track", "userId": "ada", "event": "signed_up", "timestamp": stamp},
        ],
    )
    cli = [sys.executable, "-m", "nudge.cli"]
    subprocess.run([*cli, "run", "--as-of", "2026-03-02T10:00:00Z"], env=env, check=True)
    sent = sorted(smtp_sink.messages())

    dev = DagsterDev(env, tmp_path / "dagster-dev.log").start()
    try:
        dev.wait_until_up(180, progress=lambda _: None)
        deadline = time.monotonic() + 120
        while len(ticks := finished_ticks(dev)) < 2:  # the first tick and a whole interval
            assert time.monotonic() < deadline, dev.failure("the sensor did not tick twice")
            time.sleep(1)
        runs = dev.graphql(RUNS_QUERY, {})["runsOrError"]["results"]
    finally:
        # How long dagster dev takes to stop is not checked: the daemon stops at once, but in
        # the whole suite the web server has outlived a SIGTERM by minutes (killed then).
        dev.stop(grace_seconds=60)

    assert [(t.run_ids, t.error) for t in ticks] == [((), None)] * len(ticks)
    assert len(runs) == 1  # the `nudge run` above, and nothing the UI started
    assert sorted(smtp_sink.messages()) == sent  # no email beyond the run's own
