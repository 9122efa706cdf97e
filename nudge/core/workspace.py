"""Where a workspace keeps its files.

One directory (``NUDGE_HOME``, default ``<project>/workspace``) holds the landing area, the DuckDB
warehouse file, the assembled dbt project and the Dagster instance. Definitions live in a
content directory (``NUDGE_CONTENT``, default ``<project>/content``). The project is the nearest
directory, from the current one upwards, holding ``nudge_project.yml`` (``nudge init`` writes
one, and the repository has its own), the way dbt finds ``dbt_project.yml``: a command run in
some other directory says so instead of creating a workspace there.

The dbt project and the example content are the repository's ``dbt_project/`` and ``content/``
during development, and package data (``nudge/dbt_project``, ``nudge/example_content``, see
``setup.py``) in an installed wheel.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = PACKAGE_DIR.parent
PROJECT_FILE = "nudge_project.yml"


def bundled(packaged: str, in_repo: str) -> Path:
    """The installed package's copy of a bundled folder, else the repository's."""
    installed = PACKAGE_DIR / packaged
    return installed if installed.is_dir() else REPO_ROOT / in_repo


DBT_SOURCE_DIR = bundled("dbt_project", "dbt_project")
EXAMPLE_CONTENT_DIR = bundled("example_content", "content")
# Next to the warehouse file, so that opening the warehouse finds them (nudge.core.warehouse.journey_controls).
CONTROL_REQUESTS_DIR = "control_requests"


class NoProject(ValueError):
    """No project around the current directory, and no setting naming the folder needed."""

    def __init__(self, cwd: Path, missing: str):
        settings = "NUDGE_HOME and NUDGE_CONTENT" if missing == "both" else missing
        super().__init__(
            f"no nudge project in {cwd} or above it (no {PROJECT_FILE}); run `nudge init DIR` "
            f"to create one and run nudge inside it, or set {settings} (or pass --home and "
            "--content)."
        )


def find_project_root(start: Path) -> Path | None:
    """The nearest of ``start`` and its parents that holds ``nudge_project.yml``."""
    start = start.resolve()
    return next((d for d in (start, *start.parents) if (d / PROJECT_FILE).is_file()), None)


@dataclass(frozen=True)
class Workspace:
    home: Path
    content_dir: Path

    @classmethod
    def from_env(cls) -> Workspace:
        """``NUDGE_HOME`` and ``NUDGE_CONTENT``, each defaulting to the project's own folder."""
        home, content = os.environ.get("NUDGE_HOME"), os.environ.get("NUDGE_CONTENT")
        if home and content:
            return cls(home=Path(home).resolve(), content_dir=Path(content).resolve())
        root = find_project_root(Path.cwd())
        if root is None:
            missing = "NUDGE_CONTENT" if home else "NUDGE_HOME" if content else "both"
            raise NoProject(Path.cwd(), missing)
        return cls(
            home=Path(home).resolve() if home else root / "workspace",
            content_dir=Path(content).resolve() if content else root / "content",
        )

    @property
    def landing_dir(self) -> Path:
        """Landed messages: parquet files, each written atomically (see ``nudge.core.landing``)."""
        return self.home / "landing"

    @property
    def events_landing_dir(self) -> Path:
        return self.landing_dir / "events"

    @property
    def manual_segments_landing_dir(self) -> Path:
        """Manual segment uploads: ``<segment>/<stamp>-<uuid>.parquet`` (``nudge.core.segments.manual``)."""
        return self.landing_dir / "manual_segments"

    @property
    def suppressions_path(self) -> Path:
        """Identifiers whose messages are dropped at ingest (``nudge.core.landing.suppressions``)."""
        return self.home / "suppressions.json"

    @property
    def inbox_path(self) -> Path:
        """The in-app inbox (SQLite, ``senders.channels.in_app``): the sender writes, the
        collector serves it."""
        return self.home / "inbox.sqlite3"

    @property
    def quarantine_dir(self) -> Path:
        """Rejected input with its reasons (``nudge.core.landing.quarantine``)."""
        return self.home / "quarantine"

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
        """Held by the one run in progress (``orchestration.run_lock``)."""
        return self.home / "run.lock"

    @property
    def control_requests_dir(self) -> Path:
        """Queued pause/resume requests, applied when the warehouse is next opened for writing."""
        return self.home / CONTROL_REQUESTS_DIR

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    def ensure(self) -> Workspace:
        for path in (self.home, self.events_landing_dir, self.dagster_home):
            path.mkdir(parents=True, exist_ok=True)
        return self

    def env(self) -> dict[str, str]:
        """Environment variables that point child processes (dbt, Dagster) at this workspace."""
        return {
            "NUDGE_HOME": str(self.home),
            "NUDGE_CONTENT": str(self.content_dir),
            "NUDGE_WAREHOUSE_PATH": str(self.warehouse_path),
            "DAGSTER_HOME": str(self.dagster_home),
        }
