"""``dagster dev`` on a workspace as a child process, and the few GraphQL reads the bench needs.

It is started from the repository's own ``workspace.yaml`` in a new session (its own process
group): started from a script, ``dagster dev`` ignores SIGINT, so it is stopped with SIGTERM to the
whole group, then SIGKILL if it has not gone after a grace period. Its output goes to a log file
whose tail is quoted when something goes wrong.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nudge.core.workspace import REPO_ROOT
from nudge.devtools.free_port import free_port

LOCATION = "nudge"  # location_name in workspace.yaml
REPOSITORY = "__repository__"  # the repository Dagster makes of a Definitions object
FINISHED = frozenset({"SUCCESS", "FAILURE", "CANCELED"})

_LOCATION_QUERY = """
{
  workspaceOrError { ... on Workspace { locationEntries {
    name loadStatus locationOrLoadError { __typename ... on PythonError { message } }
  } } }
}
"""
_TICKS_QUERY = """
query Ticks($selector: SensorSelector!, $limit: Int!) {
  sensorOrError(sensorSelector: $selector) {
    __typename
    ... on Sensor { sensorState { status ticks(limit: $limit) {
      status timestamp runIds skipReason error { message }
    } } }
    ... on PythonError { message }
  }
}
"""
_RUN_QUERY = """
query Run($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { runId status creationTime startTime endTime }
    ... on PythonError { message }
  }
}
"""


@dataclass(frozen=True)
class Tick:
    status: str  # STARTED, SKIPPED, SUCCESS or FAILURE
    timestamp: float  # epoch seconds
    run_ids: tuple[str, ...]
    skip_reason: str | None
    error: str | None


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    status: str
    creation_time: float  # epoch seconds
    start_time: float | None
    end_time: float | None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process visible in /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # The command name (field 2) may hold spaces and parentheses: split after its ")".
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            parents[int(entry.name)] = int(fields[1])
        except (OSError, ValueError, IndexError):
            continue
    return parents


def tree_rss_mb(root: int) -> float:
    """Resident memory of ``root`` and every process descending from it, summed, in MB."""
    children: dict[int, list[int]] = {}
    for pid, parent in _parents().items():
        children.setdefault(parent, []).append(pid)
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += _rss_kb(pid)
        stack.extend(children.get(pid, ()))
    return round(total / 1024, 1)


class DagsterDev:
    """``dagster dev -w workspace.yaml`` with ``env``, answering GraphQL on a free local port."""

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self.env = dict(env)
        self.log_path = log_path
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> DagsterDev:
        dagster = Path(sys.executable).with_name("dagster")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [
                    str(dagster),
                    "dev",
                    "-w",
                    "workspace.yaml",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                ],
                cwd=REPO_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None, "dagster dev is not started"
        return self.process.pid

    def stop(self, grace_seconds: float = 60) -> None:
        """SIGTERM to the process group, SIGKILL to what is left after ``grace_seconds``."""
        if self.process is None:
            return
        process, self.process = self.process, None
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=grace_seconds)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=grace_seconds)
        with contextlib.suppress(ProcessLookupError):
            # The group may outlive its leader (a run worker finishing its step).
            os.killpg(process.pid, signal.SIGKILL)

    def __enter__(self) -> DagsterDev:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def failure(self, message: str) -> RuntimeError:
        return RuntimeError(f"{message}\n--- {self.log_path} (last lines) ---\n{self.log_tail()}")

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise self.failure(f"dagster dev exited with status {self.process.returncode}")

    def is_up(self) -> bool:
        self.check_alive()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/server_info", timeout=2):
                return True
        except OSError:
            return False

    def graphql(self, query: str, variables: Mapping[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/graphql",
            data=json.dumps({"query": query, "variables": dict(variables)}).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            body = json.loads(response.read())
        if body.get("errors"):
            raise self.failure(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def sensor_ticks(self, sensor: str, limit: int = 20) -> list[Tick]:
        """The sensor's latest ticks, newest first; empty until the daemon has evaluated it."""
        selector = {
            "repositoryLocationName": LOCATION,
            "repositoryName": REPOSITORY,
            "sensorName": sensor,
        }
        data = self.graphql(_TICKS_QUERY, {"selector": selector, "limit": limit})["sensorOrError"]
        if data["__typename"] != "Sensor":
            raise self.failure(f"sensor {sensor!r}: {data.get('message', data['__typename'])}")
        return [
            Tick(
                status=t["status"],
                timestamp=t["timestamp"],
                run_ids=tuple(t["runIds"]),
                skip_reason=t["skipReason"],
                error=(t["error"] or {}).get("message"),
            )
            for t in data["sensorState"]["ticks"]
        ]

    def run(self, run_id: str) -> RunInfo:
        data = self.graphql(_RUN_QUERY, {"runId": run_id})["runOrError"]
        if data["__typename"] != "Run":
            raise self.failure(f"run {run_id}: {data.get('message', data['__typename'])}")
        return RunInfo(
            run_id=data["runId"],
            status=data["status"],
            creation_time=data["creationTime"],
            start_time=data["startTime"],
            end_time=data["endTime"],
        )

    def location_loaded(self) -> bool:
        """Whether the code location has loaded; raises with its error if it failed to."""
        data = self.graphql(_LOCATION_QUERY, {})["workspaceOrError"]
        entries = {e["name"]: e for e in data.get("locationEntries", [])}
        entry = entries.get(LOCATION)
        if entry is None or entry["loadStatus"] != "LOADED":
            return False
        loaded = entry["locationOrLoadError"] or {}
        if loaded.get("__typename") == "PythonError":
            raise self.failure(f"code location {LOCATION!r} failed to load: {loaded['message']}")
        return True

    def wait_until_up(self, timeout: float, progress: Callable[[str], None]) -> float:
        """Seconds until the webserver answered with the code location loaded; raises after
        ``timeout`` or when the location fails to load."""
        started = time.monotonic()
        next_note = started + 10
        while not (self.is_up() and self.location_loaded()):
            now = time.monotonic()
            if now - started > timeout:
                raise self.failure(f"dagster dev did not answer within {timeout:.0f} s")
            if now >= next_note:
                progress(f"  waiting for dagster dev to answer ({now - started:.0f} s)")
                next_note = now + 10
            time.sleep(0.5)
        return time.monotonic() - started
