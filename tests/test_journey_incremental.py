"""The engine's shortcuts give the results of the plain, whole-population evaluation.

Conditions are evaluated only for the users a stage asks about, and a date trigger's ``at`` clock
only for due times near as_of; these tests compare both with a direct evaluation.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from journeys.condition_cache import ConditionTables
from journeys.engine import run_journeys
from journeys.sqltext import at_local_clock_sql, json_path, sql_string, user_zone_sql
from nudge.core.dsl.spec import (
    Attribute,
    Comparison,
    Content,
    DateTrigger,
    Journey,
    Origin,
    Reentry,
    Send,
    Step,
)
from nudge.core.segments.compiler import compile_json_timestamp
from nudge.core.warehouse.schema import ensure_tables
from tests.standin_marts import create_user_marts

AS_OF = datetime(2026, 3, 10, 6, 30)
# Far east and west of UTC, half and quarter hours, a zone that moved across the date line,
# one with daylight saving starting two days before AS_OF, and a name that is no zone at all.
ZONES = (
    "Pacific/Kiritimati",
    "Etc/GMT+12",
    "Pacific/Apia",
    "Asia/Kathmandu",
    "America/St_Johns",
    "America/New_York",
    "UTC",
    "Not/AZone",
)


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    ensure_tables(connection)
    create_user_marts(connection)
    yield connection
    connection.close()


def _users(con: duckdb.DuckDBPyConnection, rows: list[tuple[str, dict]]) -> None:
    con.executemany(
        "insert into marts.dim_users values (?, ?)", [(u, json.dumps(t)) for u, t in rows]
    )


def test_a_condition_is_evaluated_once_per_user_and_only_for_the_users_asked_about(
    con: duckdb.DuckDBPyConnection,
) -> None:
    _users(con, [(f"u{n}", {"plan": "pro" if n % 2 else "free"}) for n in range(1, 7)])
    tables = ConditionTables(con, AS_OF, ())
    pro = Attribute("plan", Comparison("eq", "pro"))
    con.execute(
        "create table first_scope as select * from (values ('u1'), ('u2'), ('gone')) t(user_id)"
    )
    holding = tables.holding(pro, "select user_id from first_scope")
    assert sorted(con.execute(holding).fetchall()) == [("u1",)]
    holding = tables.holding(pro, "select unnest(['u2', 'u3']) as user_id")
    assert sorted(con.execute(holding).fetchall()) == [("u1",), ("u3",)]
    judged = con.execute("select user_id from _nj_cond_0 order by 1").fetchall()
    assert judged == [("gone",), ("u1",), ("u2",), ("u3",)]  # u2 judged once, u4..u6 never
    tables.drop()


@pytest.mark.parametrize("clock", ["09:00", "23:30", "00:15", None])
def test_date_trigger_fires_exactly_as_the_whole_population_formula(
    con: duckdb.DuckDBPyConnection, clock: str | None
) -> None:
    """Trait times every 97 minutes from 5 days before to 6 days after as_of, in every zone."""
    offset = -timedelta(days=1)
    rows = []
    for zone in ZONES:
        for step in range(-75, 90):
            moment = AS_OF - offset + timedelta(minutes=97 * step)
            rows.append((f"{zone}:{step}", {"ends": moment.isoformat() + "Z", "tz": zone}))
    _users(con, rows)
    ends = compile_json_timestamp(f"(u.traits -> {sql_string(json_path('ends'))})")
    due = f"({ends} + to_seconds({offset.total_seconds()}))"
    if clock is not None:
        due = at_local_clock_sql(due, clock, user_zone_sql("u.traits", "tz", "UTC"), "test")
    expected = {
        user
        for (user,) in con.execute(
            f"select u.user_id from marts.dim_users u where {due} <= ?", [AS_OF]
        ).fetchall()
    }
    trigger = DateTrigger("ends", offset=offset, at=clock, timezone_attribute="tz")
    journey = Journey(
        "dated",
        Origin("test.yml", "journey 'dated'"),
        trigger,
        (Step("hello", Send("email", "hello")),),
        reentry=Reentry("always"),
    )
    run_journeys(con, Content(journeys=(journey,)), as_of=AS_OF, run_id="r1")
    entered = {
        user for (user,) in con.execute("select user_id from nudge.journey_entries").fetchall()
    }
    assert entered == expected
    assert 0 < len(expected) < len(rows)
