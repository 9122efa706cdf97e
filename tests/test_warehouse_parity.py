"""Each seg_* scenario of tests/scenarios/ on DuckDB and on PostgreSQL side by side
(nudge.devtools.scenarios.side_by_side): the whole pipeline (load, dbt, journeys, sending) on
both, each held to the file's expectations; after each run dim_users, fct_events, the
memberships, the membership history and the messages sent must be the same on both.

This is the Postgres run of the seg_* files: tests/test_scenarios_postgres.py runs the others.
The DuckDB-only run of every file stays in tests/test_scenarios.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from nudge.devtools.scenarios.model import load_scenario
from nudge.devtools.scenarios.side_by_side import run_side_by_side
from tests.conftest import scenario_files

SCENARIOS = scenario_files("seg_")
# Deletes, re-created profiles and several runs; typed traits. The rest are slow.
FAST = {"seg_delete_user", "seg_attr_eq_typed"}


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(p, marks=() if p.stem in FAST else pytest.mark.slow, id=p.stem)
        for p in SCENARIOS
    ],
)
@pytest.mark.usefixtures("postgres_server")
def test_postgres_matches_duckdb(path: Path, tmp_path: Path) -> None:
    problems = run_side_by_side(load_scenario(path), tmp_path)
    assert not problems, "\n".join(problems)
