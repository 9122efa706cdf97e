"""`dagster dev -w workspace.yaml` loads one asset graph from the landing area to the reports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
QUERY = """
{
  workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } }
  assetNodes { assetKey { path } dependencyKeys { path } }
}
"""


def graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["data"]


def wait_until_up(port: int, process: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        assert process.poll() is None, "dagster dev exited early"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2):
                return
        except OSError:
            time.sleep(1)
    raise AssertionError("dagster dev did not answer in time")


def test_dagster_dev_loads_the_whole_graph(tmp_path: Path, unused_port: int) -> None:
    port = unused_port
    home = tmp_path / "home"
    env = {
        **os.environ,
        "NUDGE_HOME": str(home),
        "NUDGE_CONTENT": str(REPO / "content"),
        "DAGSTER_HOME": str(home / "dagster"),
    }
    subprocess.run([sys.executable, "-m", "nudge.cli", "validate"], env=env, check=True)
    dagster = Path(sys.executable).with_name("dagster")
    process = subprocess.Popen(
        [str(dagster), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until_up(port, process, time.monotonic() + 180)
        data = graphql(port, QUERY)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)

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
