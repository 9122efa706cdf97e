"""The workspace's run lock and the processes a holder starts (orchestration.run_lock).

A multiprocess run holds the lock in its orchestrating process and launches a process per step;
each step process loads the code location, which takes the lock. Those processes must work
under their run's lock (not wait for it), and no other process may pass for one of them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from nudge.core.workspace import Workspace
from orchestration.run_lock import HOLDER_ENV, hold_run_lock

# Takes the lock of the workspace NUDGE_HOME names without waiting; prints the run id it works
# under, or the refusal.
TAKE_THE_LOCK = """
from nudge.core.workspace import Workspace
from orchestration.run_lock import RunInProgress, hold_run_lock
try:
    with hold_run_lock(Workspace.from_env(), "step") as holder:
        print("under", holder.run_id)
except RunInProgress as refused:
    print("refused:", refused)
"""

# Holds the lock until its standard input closes; starts TAKE_THE_LOCK as its child first.
HOLD_AND_START_A_CHILD = f"""
import subprocess, sys
from nudge.core.workspace import Workspace
from orchestration.run_lock import hold_run_lock
with hold_run_lock(Workspace.from_env(), "the-run"):
    child = subprocess.run([sys.executable, "-c", {TAKE_THE_LOCK!r}], capture_output=True,
                           text=True, check=True)
    print(child.stdout.strip(), flush=True)
    sys.stdin.read()
"""


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != HOLDER_ENV}
    return {**env, "NUDGE_HOME": str(home), "NUDGE_CONTENT": str(home / "content"), **extra}


def test_a_process_the_holder_started_works_under_its_lock_and_no_other(tmp_path: Path) -> None:
    home = tmp_path / "home"
    Workspace(home=home, content_dir=home / "content").ensure()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_AND_START_A_CHILD],
        env=_env(home),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "under the-run"  # its child went on
        # A process the holder did not start is refused, even when it names the holder.
        stranger = subprocess.run(
            [sys.executable, "-c", TAKE_THE_LOCK],
            env=_env(home, **{HOLDER_ENV: str(holder.pid)}),
            capture_output=True,
            text=True,
            check=True,
        )
        assert stranger.stdout.startswith(f"refused: a run (pid {holder.pid}, run the-run,")
    finally:
        holder.communicate("", timeout=60)
    assert holder.returncode == 0


def test_the_holder_names_itself_only_while_it_holds_the_lock(tmp_path: Path) -> None:
    workspace = Workspace(home=tmp_path / "home", content_dir=tmp_path / "content").ensure()
    before = os.environ.pop(HOLDER_ENV, None)
    try:
        with hold_run_lock(workspace, "the-run"):
            assert os.environ[HOLDER_ENV] == str(os.getpid())
        assert HOLDER_ENV not in os.environ
    finally:
        if before is not None:
            os.environ[HOLDER_ENV] = before
