"""Where a workspace keeps its files.

One directory (``NUDGE_HOME``, default ``./workspace``) holds the landing area, the DuckDB
warehouse file, the assembled dbt project and the Dagster instance. Definitions live in a
content directory (``NUDGE_CONTENT``, default ``./content``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_SOURCE_DIR = REPO_ROOT / "dbt_project"
DEFAULT_CONTENT_DIR = REPO_ROOT / "content"
# Next to the warehouse file, so that opening the warehouse finds them (journeys.controls).
CONTROL_REQUESTS_DIR = "control_requests"

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


@dataclass(frozen=True)
class Workspace:
    home: Path
    content_dir: Path

    @classmethod
    def from_env(cls) -> Workspace:
        home = Path(os.environ.get("NUDGE_HOME", "workspace")).resolve()
        content = Path(os.environ.get("NUDGE_CONTENT", DEFAULT_CONTENT_DIR)).resolve()
        return cls(home=home, content_dir=content)

    @property
    def landing_dir(self) -> Path:
        """Landed messages: parquet files, each written atomically (see ``nudge.landing``)."""
        return self.home / "landing"

    @property
    def events_landing_dir(self) -> Path:
        return self.landing_dir / "events"

    @property
    def manual_segments_landing_dir(self) -> Path:
        """Manual segment uploads: ``<segment>/<stamp>-<uuid>.parquet`` (``nudge.segments.manual``)."""
        return self.landing_dir / "manual_segments"

    @property
    def warehouse_path(self) -> Path:
        # Always named warehouse.duckdb: dbt-duckdb derives the database name from the file stem,
        # so one parsed manifest serves every workspace.
        return self.home / "warehouse.duckdb"

    @property
    def dbt_project_dir(self) -> Path:
        """The dbt project assembled for this workspace: the repo's models plus generated ones."""
        return self.home / "dbt"

    @property
    def dbt_target_dir(self) -> Path:
        return self.home / "dbt" / "target"

    @property
    def run_lock_path(self) -> Path:
        """Held by the one run in progress (``nudge.run_lock``)."""
        return self.home / "run.lock"

    @property
    def control_requests_dir(self) -> Path:
        """Queued pause/resume requests, applied when the warehouse is next opened for writing."""
        return self.home / CONTROL_REQUESTS_DIR

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def outbox_capture_dir(self) -> Path:
        """Where the capturing ``test`` email provider writes what it was handed."""
        return self.home / "captured"

    def ensure(self) -> Workspace:
        for path in (self.home, self.events_landing_dir, self.dagster_home):
            path.mkdir(parents=True, exist_ok=True)
        instance_config = self.dagster_home / "dagster.yaml"
        if not instance_config.exists():
            instance_config.write_text(DAGSTER_INSTANCE_CONFIG)
        return self

    def env(self) -> dict[str, str]:
        """Environment variables that point child processes (dbt, Dagster) at this workspace."""
        return {
            "NUDGE_HOME": str(self.home),
            "NUDGE_CONTENT": str(self.content_dir),
            "NUDGE_WAREHOUSE_PATH": str(self.warehouse_path),
            "DAGSTER_HOME": str(self.dagster_home),
        }
