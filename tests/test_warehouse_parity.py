"""Each seg_* scenario of tests/scenarios/ on DuckDB and on PostgreSQL side by side
(nudge.devtools.scenarios.side_by_side): the whole pipeline (load, dbt, journeys, sending) on
both, each held to the file's expectations; after each run dim_users, fct_events, the
memberships, the membership history and the messages sent must be the same on both.

This is the Postgres run of the seg_* files: tests/test_scenarios_postgres.py runs the others.
The DuckDB-only run of every file stays in tests/test_scenarios.py. Two run in the fast suite,
one of each family in ``make test``, and every file in ``make test-postgres``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from nudge.devtools.scenarios.model import load_scenario
from nudge.devtools.scenarios.side_by_side import run_side_by_side
from tests.conftest import postgres_marks, scenario_files

SCENARIOS = scenario_files("seg_")
# Deletes, re-created profiles and several runs; typed traits. The rest are slow.
FAST = {"seg_delete_user", "seg_attr_eq_typed"}
# One of each family, in make test: identity merges, attribute operators on timestamps, lists and
# strings, event counts and windows, late data, nested logic, random buckets, subscriptions,
# message conditions, property filters, suppression, tagged SQL segments.
FAMILIES = {
    "seg_anonymous_merge_identify",
    "seg_merge_customers",
    "seg_attr_gt_timestamp_operand",
    "seg_attr_contains_array",
    "seg_attr_within_next",
    "seg_performed_times_operators",
    "seg_performed_window_boundaries",
    "seg_late_trait_update",
    "seg_logic_nested",
    "seg_random_bucket_stable",
    "seg_subscription_preferences",
    "seg_message_within",
    "seg_where_timestamp_ops",
    "seg_suppress_user",
    "seg_sql_tagged_outside_segments",
    "seg_in_segment_chain",
}


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, marks=postgres_marks(p.stem, FAST, FAMILIES), id=p.stem) for p in SCENARIOS],
)
@pytest.mark.usefixtures("postgres_server")
def test_postgres_matches_duckdb(path: Path, tmp_path: Path) -> None:
    problems = run_side_by_side(load_scenario(path), tmp_path)
    assert not problems, "\n".join(problems)
