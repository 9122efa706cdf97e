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
from nudge.devtools.scenarios.postgres_mirror import run_mirrored

SCENARIOS = sorted((Path(__file__).parent / "scenarios").glob("seg_*.yml"))
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
def test_postgres_matches_duckdb(path: Path, tmp_path: Path, postgres_database: str) -> None:
    problems = run_mirrored(load_scenario(path), tmp_path, postgres_database)
    assert not problems, "\n".join(problems)
