"""A scenario run on DuckDB, mirrored step by step by dbt builds on PostgreSQL, and compared
(``nudge.devtools.scenarios.mirror``).

The landing files are loaded with the Postgres loader (``COPY``). The journey engine and the
senders run on DuckDB here (the whole pipeline on Postgres is ``run_scenario(...,
warehouse="postgres")``): before each run the mirror copies the two tables of theirs that dbt
reads (``nudge.runs``, ``nudge.delivery_ledger``) from DuckDB, as they stand when DuckDB's own
build reads them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from nudge.core.landing.postgres_loader import load_new_files_postgres
from nudge.core.segments.dbt_models import generated_segment_models
from nudge.core.warehouse.dbt import DbtWorkspaceProject
from nudge.core.warehouse.postgres import connect_postgres
from nudge.core.workspace import Workspace
from nudge.devtools.scenarios.mirror import Mirror, duckdb_rows, run_mirrored
from nudge.devtools.scenarios.model import Scenario
from nudge.devtools.scenarios.runner import ScenarioRun

# The engine's tables dbt reads as sources, copied from DuckDB before each mirrored build.
COPIED_TABLES = ("nudge.runs", "nudge.delivery_ledger")


class PostgresMirror(Mirror):
    """The Postgres side of one scenario: its own dbt project, building into ``url``."""

    label = "Postgres"

    def __init__(self, run: ScenarioRun, home: Path, url: str) -> None:
        self.run = run
        self.url = url
        self.workspace = Workspace(home=home, content_dir=run.scenario.path.parent).ensure()
        self.project = DbtWorkspaceProject(
            self.workspace, source_dir=run.dbt_source, warehouse="postgres", postgres_url=url
        )
        self.assemble()

    def assemble(self) -> None:
        """(Re)write the project with the scenario's current segments compiled for Postgres."""
        self.project.assemble(generated_segment_models(self.run.content, dialect="postgres"))
        self.project.manifest()

    def build(self, as_of: datetime) -> None:
        """Load new landing files, copy the engine's tables, and build every model at as_of."""
        copies = {
            table: duckdb_rows(self.run.workspace.warehouse_path, f"select * from {table}")
            for table in COPIED_TABLES
        }
        with connect_postgres(self.url) as con:
            load_new_files_postgres(con, self.run.workspace.events_landing_dir)
            with con.cursor() as cursor:
                for table, (columns, rows) in copies.items():
                    cursor.execute(f"delete from {table}")
                    if rows:
                        names = ", ".join(columns)
                        marks = ", ".join(["%s"] * len(columns))
                        cursor.executemany(f"insert into {table} ({names}) values ({marks})", rows)
            con.commit()
        self.project.build(as_of)

    def rows(self, query: str, json_columns: tuple[str, ...]) -> tuple[list[str], list[Any]]:
        with connect_postgres(self.url) as con, con.cursor() as cursor:
            cursor.execute(query)
            return [d[0] for d in cursor.description], cursor.fetchall()


def run_mirrored_postgres(
    scenario: Scenario,
    home: Path,
    postgres_url: str,
    progress: Callable[[str], None] | None = None,
) -> list[str]:
    """``run_mirrored`` with a ``PostgresMirror`` building into ``postgres_url``."""
    return run_mirrored(
        scenario, home, lambda run: PostgresMirror(run, home / "postgres", postgres_url), progress
    )
