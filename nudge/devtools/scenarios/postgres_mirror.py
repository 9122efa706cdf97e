"""A scenario run on DuckDB, mirrored step by step by dbt builds on PostgreSQL, and compared.

What this checks is the dbt project on Postgres: the same landing files, loaded with the Postgres
loader (``COPY``), built at the same ``as_of`` values with the YAML segments compiled for
Postgres, must give the same users, events, segment memberships and membership history as the
DuckDB run. The journey engine and the senders run on DuckDB here (the whole pipeline on
Postgres is ``run_scenario(..., warehouse="postgres")``): before each run the mirror copies the two tables of theirs that dbt reads (``nudge.runs``,
``nudge.delivery_ledger``) from DuckDB, as they stand when DuckDB's own build reads them.

A definition version is the hash of a segment model's SQL, which differs per dialect by
construction, so history rows are compared without it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from nudge.core.landing.postgres_loader import load_new_files_postgres
from nudge.core.segments.dbt_models import generated_segment_models
from nudge.core.warehouse.connection import connect
from nudge.core.warehouse.dbt import DbtWorkspaceProject
from nudge.core.warehouse.postgres import connect_postgres
from nudge.core.workspace import Workspace
from nudge.devtools.scenarios.model import Scenario
from nudge.devtools.scenarios.runner import ScenarioRun

# The engine's tables dbt reads as sources, copied from DuckDB before each mirrored build.
COPIED_TABLES = ("nudge.runs", "nudge.delivery_ledger")
# What is compared after each run: the query (the same text on both warehouses) and which of
# its columns hold JSON documents.
COMPARED: dict[str, tuple[str, tuple[str, ...]]] = {
    "dim_users": (
        "select user_id, traits, email, first_name, plan, timezone, country, created_at, phone,"
        " unsubscribed, first_seen_at, last_seen_at from marts.dim_users",
        ("traits",),
    ),
    "fct_events": (
        "select message_id, user_id, type, event, name, timestamp, properties, context,"
        " received_at from marts.fct_events",
        ("properties", "context"),
    ),
    "fct_segment_memberships": (
        "select segment, user_id from marts.fct_segment_memberships",
        (),
    ),
    "fct_segment_membership_history": (
        "select segment, user_id, entered_at, exited_at, exit_reason"
        " from marts.fct_segment_membership_history",
        (),
    ),
}


def _numbers_as_values(value: Any) -> Any:
    """``value`` (parsed JSON) with every number as its normalised decimal text, so that numbers
    compare as JSON values: DuckDB keeps the text ``5.0``, Spark's VARIANT the decimal 5."""
    if isinstance(value, dict):
        return {key: _numbers_as_values(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_numbers_as_values(item) for item in value]
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return {"$number": str(Decimal(str(value)).normalize())}
    return value


def normalized_rows(
    rows: Sequence[Sequence[Any]], columns: list[str], json_columns: tuple[str, ...]
):
    """Rows as sorted tuples, JSON documents parsed (DuckDB gives text, psycopg2 objects) and
    compared as values."""
    positions = [columns.index(name) for name in json_columns]
    result = []
    for row in rows:
        values = list(row)
        for position in positions:
            if isinstance(values[position], str):
                values[position] = json.loads(values[position], parse_float=Decimal)
            values[position] = json.dumps(_numbers_as_values(values[position]), sort_keys=True)
        result.append(tuple(values))
    return sorted(result, key=repr)


def _duckdb_rows(path: Path, query: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    with connect(path, read_only=True) as con:
        cursor = con.execute(query)
        return [d[0] for d in cursor.description], cursor.fetchall()


def _postgres_rows(url: str, query: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    with connect_postgres(url) as con, con.cursor() as cursor:
        cursor.execute(query)
        return [d[0] for d in cursor.description], cursor.fetchall()


class PostgresMirror:
    """The Postgres side of one scenario: its own dbt project, building into ``url``."""

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
            table: _duckdb_rows(self.run.workspace.warehouse_path, f"select * from {table}")
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

    def differences(self) -> list[str]:
        """One line per compared table whose rows differ between DuckDB and Postgres."""
        found = []
        for name, (query, json_columns) in COMPARED.items():
            columns, duck = _duckdb_rows(self.run.workspace.warehouse_path, query)
            pg_columns, pg = _postgres_rows(self.url, query)
            duck_rows = normalized_rows(duck, columns, json_columns)
            pg_rows = normalized_rows(pg, pg_columns, json_columns)
            if duck_rows != pg_rows:
                only_duck = [r for r in duck_rows if r not in pg_rows]
                only_pg = [r for r in pg_rows if r not in duck_rows]
                found.append(
                    f"{name}: only on DuckDB {only_duck[:5]}; only on Postgres {only_pg[:5]}"
                )
        return found


def run_mirrored(
    scenario: Scenario,
    home: Path,
    postgres_url: str,
    progress: Callable[[str], None] | None = None,
) -> list[str]:
    """Run ``scenario`` on DuckDB and mirror every run on Postgres; returns every difference
    (after which run) and every failed expectation of the DuckDB run."""
    state = ScenarioRun(scenario, home / "duckdb")
    mirror = PostgresMirror(state, home / "postgres", postgres_url)
    problems: list[str] = []
    for step in scenario.steps:
        if progress:
            progress(f"{scenario.name}: steps[{step.index}] {step.kind}")
        if step.kind == "run":
            as_of = scenario.resolve_time(step.body["at"], f"steps[{step.index}].run.at")
            mirror.build(as_of)
            state.run(step)
            problems += [f"after steps[{step.index}] {d}" for d in mirror.differences()]
            continue
        problems += [str(failure) for failure in getattr(state, step.kind)(step)]
        if step.kind == "define":
            mirror.assemble()
    return problems
