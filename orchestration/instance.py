"""The Dagster instance of a workspace (``<home>/dagster``): its ``dagster.yaml``, written once."""

from __future__ import annotations

from pathlib import Path

from nudge.core.workspace import Workspace

# Every asset that opens the DuckDB file is in the "duckdb" pool: one step at a time holds it.
# The daemon looks for queued runs every second (Dagster's default is 5 s): a sensor's run is
# what turns a landed event into a message, and the wait adds to that latency.
DAGSTER_INSTANCE_CONFIG = """\
concurrency:
  pools:
    default_limit: 1
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
telemetry:
  enabled: false
"""


def ensure_instance(workspace: Workspace) -> Path:
    """Write the workspace's ``dagster.yaml`` unless the operator already has one."""
    workspace.dagster_home.mkdir(parents=True, exist_ok=True)
    instance_config = workspace.dagster_home / "dagster.yaml"
    if not instance_config.exists():
        instance_config.write_text(DAGSTER_INSTANCE_CONFIG)
    return instance_config
