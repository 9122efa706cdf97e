"""The dbt project on PostgreSQL gives what it gives on DuckDB.

Each seg_* scenario of tests/scenarios/ runs on DuckDB (the whole pipeline) while every run is
mirrored by a dbt build on a fresh Postgres database at the same as_of, from the same landing
files (nudge.devtools.scenarios.postgres_mirror); after each run dim_users, fct_events, the
memberships and the membership history must hold the same rows on both.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from nudge.devtools.scenarios.model import load_scenario
from nudge.devtools.scenarios.postgres_mirror import run_mirrored_postgres
from nudge.devtools.scenarios.runner import scenario_database
from tests.conftest import scenario_files

SCENARIOS = scenario_files("seg_")
# One scenario (deletes, re-created profiles, several runs) in the fast suite; about a minute
# each, so the rest are slow.
FAST = {"seg_delete_user"}


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(p, marks=() if p.stem in FAST else pytest.mark.slow, id=p.stem)
        for p in SCENARIOS
    ],
)
@pytest.mark.usefixtures("postgres_server")
def test_postgres_matches_duckdb(path: Path, tmp_path: Path) -> None:
    # The database named once per process (scenario_database) keeps dbt's partial parsing valid
    # from one scenario to the next.
    with scenario_database() as url:
        problems = run_mirrored_postgres(load_scenario(path), tmp_path, url)
    assert not problems, "\n".join(problems)
