"""What the code location is built from: the workspace, its validated content, its dbt project.

Loaded once per process (a cached factory, as dagster-open-platform does for dbt assets), so that
importing a module never needs a manifest and a bad definition fails the load with a message that
names the file and field.

Loading writes: it creates missing warehouse tables and re-assembles and parses the workspace's
dbt project. So it holds the workspace's run lock (``orchestration.run_lock``), waiting for a run in
progress to end: a run worker the daemon starts while another run works would otherwise rewrite
the dbt project under that run and find the warehouse held. ``nudge run`` already holds the lock.
The step processes of a multiprocess run work under their run's lock, so they load one at a time
under a lock of their own.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache

from nudge.core.dsl.spec import Content
from nudge.core.warehouse.connection import connect
from nudge.core.warehouse.dbt import DbtWorkspaceProject
from nudge.core.workspace import Workspace
from orchestration.run_lock import hold_run_lock
from orchestration.stages import prepare_workspace
from senders.settings import env_seconds


@dataclass(frozen=True)
class Location:
    workspace: Workspace
    content: Content
    project: DbtWorkspaceProject


# How long a process of the code location (code server, run worker) waits for a run to end.
LOCK_WAIT_ENV = "NUDGE_RUN_LOCK_WAIT_SECONDS"
DEFAULT_LOCK_WAIT_SECONDS = 1800.0


def lock_wait_seconds() -> float:
    """``NUDGE_RUN_LOCK_WAIT_SECONDS``, else half an hour."""
    return env_seconds(os.environ, LOCK_WAIT_ENV, DEFAULT_LOCK_WAIT_SECONDS, zero=True)


@cache
def load_location() -> Location:
    workspace = Workspace.from_env()
    with (
        hold_run_lock(workspace, "loading-definitions", wait_seconds=lock_wait_seconds()),
        _one_loader_at_a_time(workspace),
    ):
        content, project = prepare_workspace(workspace)
    return Location(workspace, content, project)


@contextmanager
def _one_loader_at_a_time(workspace: Workspace) -> Iterator[None]:
    """An exclusive ``flock`` beside the run lock, for as long as the code location loads.

    The step processes of a multiprocess run all work under their run's lock, and each loads the
    code location: assembling and parsing one dbt project (dbt writes ``target/manifest.json``)
    in several processes at once would let one read what another is writing."""
    path = workspace.run_lock_path.with_name("loading.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the flock


def count_rows(sql: str) -> dict[str, int]:
    """``select label, count(*) ...`` over the workspace's warehouse, as asset metadata."""
    with connect(load_location().workspace.warehouse_path, read_only=True) as con:
        return {str(label): count for label, count in con.execute(sql).fetchall()}
