"""`dagster dev -w workspace.yaml` loads one asset graph from the landing area to the reports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nudge.bench.dagster_dev import DagsterDev

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
QUERY = """
{
  workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } }
  assetNodes { assetKey { path } dependencyKeys { path } }
}
"""


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
