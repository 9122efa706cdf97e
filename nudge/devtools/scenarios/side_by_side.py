"""A scenario run on DuckDB and on PostgreSQL side by side, the whole pipeline on both, compared
after every run.

Each step runs on the DuckDB workspace and then on the Postgres one (a database of its own,
``runner.scenario_database``; ``NUDGE_WAREHOUSE`` points at it only while its side runs), except
that events are landed once, on the DuckDB side, and its new landing files copied to the Postgres
side: a landed row records the wall clock as ``received_at``, which ``fct_events`` keeps. Both
sides are held to the file's expectations, and after each run the ``mirror.COMPARED`` tables
(users, events, memberships, membership history) and the messages the run sent must be the same
on both. One run of each side checks what the scenario suite on Postgres and the dbt parity
check used to check in two.

Given a Spark session, the DuckDB run is also mirrored by dbt builds on Spark
(``spark_mirror.SparkMirror``: the dbt project only, as the engine does not run on Spark) and
compared after every run, so that the same DuckDB run serves both comparisons.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nudge.core.warehouse.postgres import connect_postgres, pointing_at
from nudge.devtools.scenarios.mirror import compared_differences
from nudge.devtools.scenarios.model import Scenario
from nudge.devtools.scenarios.runner import ScenarioRun, scenario_database, sort_sent
from nudge.devtools.scenarios.spark_mirror import SparkMirror


def _copy_new_files(landing_dir: Path, to: ScenarioRun) -> None:
    """Copy the landing files of ``landing_dir`` that ``to``'s landing folder lacks."""
    target = to.workspace.events_landing_dir
    for path in sorted(landing_dir.glob("*.parquet")):
        if not (target / path.name).exists():
            shutil.copy2(path, target / path.name)


def run_side_by_side(
    scenario: Scenario,
    home: Path,
    progress: Callable[[str], None] | None = None,
    *,
    spark: Any | None = None,
) -> list[str]:
    """Run ``scenario`` on DuckDB (in ``home/duckdb``) and on Postgres (``home/postgres``, in a
    database dropped afterwards), and mirror it on ``spark`` if given (``home/spark``); returns
    every failed expectation of DuckDB and Postgres and every difference from DuckDB (after
    which run)."""
    problems: list[str] = []
    with scenario_database() as url:
        duckdb = ScenarioRun(scenario, home / "duckdb")
        with pointing_at(url):
            postgres = ScenarioRun(scenario, home / "postgres")
        mirror = None if spark is None else SparkMirror(duckdb, home / "spark", spark)

        def postgres_rows(query: str, json_columns: tuple[str, ...]) -> tuple[list[str], Any]:
            with connect_postgres(url) as con, con.cursor() as cursor:
                cursor.execute(query)
                return [d[0] for d in cursor.description], cursor.fetchall()

        for step in scenario.steps:
            if progress:
                progress(f"{scenario.name}: steps[{step.index}] {step.kind}")
            sent = (len(duckdb.captured()), len(postgres.captured()))
            if mirror is not None:
                mirror.before(step)
            problems += [f"on DuckDB {f}" for f in getattr(duckdb, step.kind)(step)]
            if mirror is not None:
                problems += mirror.after(step)
            if step.kind == "events":
                _copy_new_files(duckdb.workspace.events_landing_dir, postgres)
                continue
            with pointing_at(url):
                problems += [f"on Postgres {f}" for f in getattr(postgres, step.kind)(step)]
            if step.kind != "run":
                continue
            after = f"after steps[{step.index}]"
            differences = compared_differences(
                duckdb.workspace.warehouse_path, postgres_rows, "Postgres"
            )
            problems += [f"{after} {d}" for d in differences]
            on_duckdb = sort_sent(duckdb.captured()[sent[0] :])
            on_postgres = sort_sent(postgres.captured()[sent[1] :])
            if on_duckdb != on_postgres:
                problems.append(f"{after} sent on DuckDB {on_duckdb}; on Postgres {on_postgres}")
    return problems
