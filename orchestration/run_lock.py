"""One run at a time per workspace: an exclusive ``flock`` on ``<home>/run.lock``.

The kernel drops an flock when the process holding it ends, however it ends (``kill -9``
included), so the lock is never stale and needs no clean-up. The processes a holder starts (a
multiprocess run's step workers) work under its lock: the holder names itself in
``NUDGE_RUN_LOCK_HOLDER``, which they inherit, and a process whose ancestor holds the lock goes on
without taking it. The holder writes its pid, run id
and start time into the file, for the sentence a refused run or a read command prints. That text
may outlive its writer (a killed run leaves it behind), so it is only believed while that pid
is alive.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from nudge.core.environment import environment
from nudge.core.workspace import Workspace

POLL_SECONDS = 0.5
HOLDER_ENV = "NUDGE_RUN_LOCK_HOLDER"


@dataclass(frozen=True)
class RunHolder:
    """Who holds (or last held) a workspace's run lock."""

    pid: int
    run_id: str
    started_at: str  # ISO 8601, UTC, seconds

    def describe(self, home: Path) -> str:
        return (
            f"a run (pid {self.pid}, run {self.run_id}, started {self.started_at}) is in "
            f"progress in {home}"
        )


class RunInProgress(Exception):
    """Another live process holds the workspace's run lock."""

    def __init__(self, home: Path, holder: RunHolder | None):
        who = holder.describe(home) if holder else f"another run is in progress in {home}"
        super().__init__(f"{who}; wait for it to finish or stop it, then try again.")
        self.holder = holder


def process_is_gone(pid: int) -> bool:
    """True when no process ``pid`` runs here (a zombie counts as gone: it runs nothing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        # /proc/<pid>/stat: "pid (comm) state ..."; comm may hold spaces, so split after ')'.
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def live_holder(workspace: Workspace) -> RunHolder | None:
    """The run that holds the lock now, as its file says, if that process is still alive."""
    try:
        data = json.loads(workspace.run_lock_path.read_text() or "null")
        holder = RunHolder(int(data["pid"]), str(data["run_id"]), str(data["started_at"]))
    except (OSError, ValueError, TypeError, KeyError):  # no file, or caught mid-write
        return None
    return None if process_is_gone(holder.pid) else holder


def _ancestors() -> set[int]:
    """The pids of this process's parent, its parent, and so on up to init."""
    found: set[int] = set()
    pid = os.getppid()
    while pid > 1 and pid not in found:
        found.add(pid)
        try:
            # /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces.
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return found


def _held_by_an_ancestor(workspace: Workspace) -> RunHolder | None:
    """The lock's holder, when it is the process that started this one (directly or not)."""
    named = os.environ.get(HOLDER_ENV, "")
    if not named.isdigit():
        return None
    holder = live_holder(workspace)
    if holder is None or holder.pid != int(named) or holder.pid not in _ancestors():
        return None
    return holder


def _take(fd: int, wait_seconds: float, stop: Callable[[], bool]) -> bool:
    """Try for the lock every ``POLL_SECONDS`` up to ``wait_seconds``; False if not taken."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline or stop():
                return False
            time.sleep(POLL_SECONDS)


# Locks this process holds, so that code under a held lock (``nudge run`` loading the code
# location, which takes the lock too) does not wait for itself: an flock taken through a second
# file descriptor conflicts even within one process.
_held: dict[Path, RunHolder] = {}


@contextmanager
def hold_run_lock(
    workspace: Workspace,
    run_id: str,
    *,
    wait_seconds: float = 0.0,
    stop: Callable[[], bool] = lambda: False,
) -> Iterator[RunHolder]:
    """Hold the workspace's run lock for the block; raise ``RunInProgress`` if a run has it
    (after waiting up to ``wait_seconds`` for it to end, or until ``stop()`` says so)."""
    path = workspace.run_lock_path
    if path in _held:
        yield _held[path]
        return
    if (inherited := _held_by_an_ancestor(workspace)) is not None:
        yield inherited
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _take(fd, wait_seconds, stop):
            raise RunInProgress(workspace.home, live_holder(workspace))
        started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        holder = RunHolder(os.getpid(), run_id, started)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder.__dict__).encode(), 0)
        _held[path] = holder
        try:
            with environment({HOLDER_ENV: str(holder.pid)}):
                yield holder
        finally:
            del _held[path]
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the flock
