"""Every model nudge builds, as compiled, transpiles to Snowflake, BigQuery and Databricks.

The project is built once (DuckDB, the reference dialect) with the repository's content, i.e.
its YAML segments as the segment compiler writes them, then compiled twice: with --full-refresh
(every model's first build) and without (the incremental branches), and each model is transpiled by sqlglot
with unsupported features raising. What sqlglot cannot translate is a function it does not know;
the only ones allowed are those isolated behind the dispatch macros of
dbt_project/macros/portable/, which a new warehouse implements (docs/warehouses.md). A
DuckDB-only function written straight into a model fails here.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest
import sqlglot
from sqlglot import ErrorLevel, exp

from nudge.core.dsl.load import load_content_dir
from nudge.core.segments.compiler import Relations, compile_condition
from nudge.core.warehouse.connection import connect
from nudge.core.warehouse.dbt import DbtWorkspaceProject, sql_segment_models
from nudge.core.workspace import Workspace
from orchestration.stages import prepare_workspace

REPO = Path(__file__).resolve().parents[1]
TARGETS = ("snowflake", "bigquery", "databricks")
# DuckDB functions with no counterpart sqlglot could write, each behind a portable macro.
MACRO_FUNCTIONS = {
    "JSON_EACH": "json_entries",
    "JSON_GROUP_OBJECT": "json_object_agg",
}
# Functions sqlglot knows but renders with DuckDB's meaning (JSON_TYPE's 'NULL'), likewise.
MISREAD_FUNCTIONS = {exp.JSONType: "json_is_null"}
# The models a --full-refresh build leaves as they are (full_refresh=false).
LOGS = ("marts.fct_segment_membership_history", "marts.fct_segment_definition_changes")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    home = tmp_path_factory.mktemp("transpile")
    workspace = Workspace(home=home, content_dir=REPO / "content").ensure()
    _content, project = prepare_workspace(workspace)
    project = DbtWorkspaceProject(workspace, warehouse="duckdb")
    project.build(datetime(2026, 1, 8))
    incremental = project.compile(datetime(2026, 1, 9))
    # --full-refresh leaves the logs that are never rebuilt (full_refresh=false) incremental:
    # without their tables, they compile their first build too.
    with connect(workspace.warehouse_path) as con:
        for log in LOGS:
            con.execute(f"drop table {log}")
    first_build = project.compile(datetime(2026, 1, 9), full_refresh=True)
    return {"first build": first_build, "incremental": incremental}


def _unknown_functions(sql: str) -> set[str]:
    found = set()
    for statement in sqlglot.parse(sql, read="duckdb"):
        if statement is None:
            continue
        found |= {f.name.upper() for f in statement.find_all(exp.Anonymous)}
        found |= {f"{kind.__name__}" for kind in MISREAD_FUNCTIONS if any(statement.find_all(kind))}
    return found


def test_project_has_models_and_segments(compiled: dict[str, dict[str, str]]) -> None:
    for models in compiled.values():
        assert {"stg_events", "dim_users", "fct_segment_membership_history"} <= models.keys()
        assert len(models) > 20


def test_the_logs_compile_their_first_build_too(compiled: dict[str, dict[str, str]]) -> None:
    for log in LOGS:
        name = log.split(".")[1]
        assert compiled["first build"][name] != compiled["incremental"][name], name


@pytest.mark.parametrize("target", TARGETS)
def test_every_model_transpiles(compiled: dict[str, dict[str, str]], target: str) -> None:
    problems = []
    for branch, models in compiled.items():
        for name, sql in sorted(models.items()):
            try:
                sqlglot.transpile(
                    sql, read="duckdb", write=target, unsupported_level=ErrorLevel.RAISE
                )
            except sqlglot.errors.SqlglotError as error:
                problems.append(f"{name} ({branch}): {error}")
                continue
            allowed = set(MACRO_FUNCTIONS) | {k.__name__ for k in MISREAD_FUNCTIONS}
            stray = _unknown_functions(sql) - allowed
            if stray:
                problems.append(f"{name} ({branch}): functions {target} lacks: {sorted(stray)}")
    assert not problems, "\n".join(problems)


# DuckDB-only constructs that only dbt_project/macros/portable/ may write.
DUCKDB_ONLY = re.compile(
    r"\bqualify\b|->>|\bjson_each\b|\bjson_group_object\b|\bjson_type\b|\btry_cast\b"
    r"|duckdb_\w+\(|interval \d|as json\)|create or replace table",
    re.IGNORECASE,
)


def test_models_leave_duckdb_only_sql_to_portable_macros() -> None:
    project = REPO / "dbt_project"
    offending = []
    for path in sorted({*project.glob("models/**/*.sql"), *project.glob("macros/**/*.sql")}):
        relative = path.relative_to(project).as_posix()
        if relative.startswith(
            ("macros/portable/", "macros/materializations/", "macros/generated/")
        ):
            continue
        code = "\n".join(line.split("--")[0] for line in path.read_text().splitlines())
        offending += [f"{relative}: {m.group(0)}" for m in DUCKDB_ONLY.finditer(code)]
    assert not offending, "\n".join(offending)


# The relations a segment reads, by plain name (the dbt models' own names).
RELATIONS = Relations(
    users="marts.dim_users",
    events="marts.fct_events",
    ledger="nudge.delivery_ledger",
    segment=lambda name: f"segments.{name}",
    as_of="cast('2026-01-09 00:00:00' as timestamp)",
    trait_values="intermediate.int_user_trait_values",
)


@pytest.mark.parametrize("target", TARGETS)
def test_segments_compile_natively_for_each_warehouse(target: str) -> None:
    """Segments are not transpiled: the segment compiler writes each dialect itself
    (nudge.core.segments.dialects). The repository's segments, written for each target, parse
    back in it with unsupported features raising and without DuckDB-only JSON functions."""
    content = load_content_dir(REPO / "content", sql_segments=sql_segment_models())
    conditions = [s for s in content.segments if s.condition is not None]
    assert conditions
    for segment in conditions:
        sql = compile_condition(segment.condition, RELATIONS, topics=content.topics, dialect=target)
        parsed = sqlglot.parse_one(sql, read=target, error_level=ErrorLevel.RAISE)
        parsed.sql(target, unsupported_level=ErrorLevel.RAISE)
        assert not re.search(r"json_each|json_group_object|->>", sql, re.IGNORECASE), segment.name
