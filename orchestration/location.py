"""What the code location is built from: the workspace, its validated content, its dbt project.

Loaded once per process (a cached factory, as dagster-open-platform does for dbt assets), so that
importing a module never needs a manifest and a bad definition fails the load with a message that
names the file and field.

Loading writes: it creates missing warehouse tables and re-assembles and parses the workspace's
dbt project. So it holds the workspace's run lock (``orchestration.run_lock``), waiting for a run in
progress to end: a run worker the daemon starts while another run works would otherwise rewrite
the dbt project under that run and find the warehouse held. ``nudge run`` already holds the lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from nudge.core.dsl.spec import Content
from nudge.core.warehouse.connection import connect
from nudge.core.warehouse.dbt import DbtWorkspaceProject
from nudge.core.workspace import Workspace
from orchestration.run_lock import hold_run_lock
from orchestration.stages import prepare_workspace


@dataclass(frozen=True)
class Location:
    workspace: Workspace
    content: Content
    project: DbtWorkspaceProject


# How long a process of the code location (code server, run worker) waits for a run to end.
LOCK_WAIT_SECONDS = 1800.0


@cache
def load_location() -> Location:
    workspace = Workspace.from_env()
    with hold_run_lock(workspace, "loading-definitions", wait_seconds=LOCK_WAIT_SECONDS):
        content, project = prepare_workspace(workspace)
    return Location(workspace, content, project)


def count_rows(sql: str) -> dict[str, int]:
    """``select label, count(*) ...`` over the workspace's warehouse, as asset metadata."""
    with connect(load_location().workspace.warehouse_path, read_only=True) as con:
        return {str(label): count for label, count in con.execute(sql).fetchall()}
