"""A scenario run on DuckDB, mirrored step by step by dbt builds on another warehouse, and
compared (``spark_mirror``; ``compared_differences`` also serves ``side_by_side``).

What this checks is the dbt project on the other warehouse: the same landing files, built at the
same ``as_of`` values with the YAML segments compiled for that warehouse, must give the same
users, events, segment memberships and membership history as the DuckDB run. The journey engine
and the senders run on DuckDB; a mirror copies the engine's tables that dbt reads from DuckDB
before each build.

A definition version is the hash of a segment model's SQL, which differs per dialect by
construction, so history rows are compared without it.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from nudge.core.warehouse.connection import connect
from nudge.devtools.scenarios.model import Scenario, Step
from nudge.devtools.scenarios.runner import ScenarioRun

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


def duckdb_rows(path: Path, query: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    with connect(path, read_only=True) as con:
        cursor = con.execute(query)
        return [d[0] for d in cursor.description], cursor.fetchall()


class Mirror(ABC):
    """The other warehouse's side of one scenario: ``assemble`` (re)writes its dbt project with
    the scenario's current segments, ``build`` loads and builds at an ``as_of``, ``rows``
    answers a compared query there."""

    label: str
    run: ScenarioRun

    @abstractmethod
    def assemble(self) -> None: ...

    @abstractmethod
    def build(self, as_of: datetime) -> None: ...

    @abstractmethod
    def rows(self, query: str, json_columns: tuple[str, ...]) -> tuple[list[str], list[Any]]: ...

    def differences(self) -> list[str]:
        """One line per compared table whose rows differ between DuckDB and this warehouse."""
        return compared_differences(self.run.workspace.warehouse_path, self.rows, self.label)

    def before(self, step: Step) -> None:
        """What to do before DuckDB takes ``step``: a run is built here first, so that the copies
        of the engine's tables are as DuckDB's own build is about to read them."""
        if step.kind == "run":
            self.build(self.run.scenario.run_at(step))

    def after(self, step: Step) -> list[str]:
        """What to do once DuckDB took ``step``: the project follows a ``define``; a run is
        compared (the differences, each prefixed with the step)."""
        if step.kind == "define":
            self.assemble()
        if step.kind != "run":
            return []
        return [f"after steps[{step.index}] {d}" for d in self.differences()]


def compared_differences(
    duckdb_path: Path,
    rows: Callable[[str, tuple[str, ...]], tuple[list[str], list[Any]]],
    label: str,
) -> list[str]:
    """One line per ``COMPARED`` table whose rows differ between the DuckDB file at
    ``duckdb_path`` and the warehouse ``rows`` queries (named ``label``)."""
    found = []
    for name, (query, json_columns) in COMPARED.items():
        columns, duck = duckdb_rows(duckdb_path, query)
        their_columns, theirs = rows(query, json_columns)
        duck_rows = normalized_rows(duck, columns, json_columns)
        their_rows = normalized_rows(theirs, their_columns, json_columns)
        if duck_rows != their_rows:
            only_duck = [r for r in duck_rows if r not in their_rows]
            only_theirs = [r for r in their_rows if r not in duck_rows]
            found.append(
                f"{name}: only on DuckDB {only_duck[:5]}; only on {label} {only_theirs[:5]}"
            )
    return found


def run_mirrored(
    scenario: Scenario,
    home: Path,
    mirror_of: Callable[[ScenarioRun], Mirror],
    progress: Callable[[str], None] | None = None,
) -> list[str]:
    """Run ``scenario`` on DuckDB and mirror every run with ``mirror_of(run)``; returns every
    difference (after which run) and every failed expectation of the DuckDB run."""
    state = ScenarioRun(scenario, home / "duckdb")
    mirror = mirror_of(state)
    problems: list[str] = []
    for step in scenario.steps:
        if progress:
            progress(f"{scenario.name}: steps[{step.index}] {step.kind}")
        mirror.before(step)
        problems += [str(failure) for failure in getattr(state, step.kind)(step)]
        problems += mirror.after(step)
    return problems
