"""Compiled segments on other warehouses.

Postgres runs here: every condition kind and operator is compiled for postgres, run against real
Postgres tables (jsonb traits and properties) holding the same rows as a DuckDB database, and must
give the same member set as the DuckDB compilation. Snowflake, BigQuery and Databricks cannot run
here: their SQL must parse back in that dialect with unsupported features raising, and must not
contain DuckDB-only functions or operators.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import duckdb
import jinja2
import pytest
import sqlglot
from sqlglot import ErrorLevel

from nudge.core.dsl.spec import (
    All,
    AnyOf,
    Attribute,
    Comparison,
    Condition,
    Everyone,
    InSegment,
    MessageCondition,
    Not,
    Performed,
    PropertyFilter,
    RandomBucket,
    Subscription,
    Topic,
    TriggerRef,
)
from nudge.core.segments.compiler import (
    ConditionError,
    Relations,
    compile_condition,
    compile_entry_condition,
)
from nudge.core.segments.dbt_models import trait_timestamp_macro

AS_OF = datetime(2026, 1, 10, 12, 0, 0)
DAY = timedelta(days=1)
TOPICS = (Topic("news", default_subscribed=True), Topic("offers", default_subscribed=False))
RELATIONS = Relations(
    users="users",
    events="events",
    ledger="ledger",
    segment=lambda name: f"seg_{name}",
    as_of=f"cast('{AS_OF.isoformat(sep=' ')}' as timestamp)",
)
PSQL = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-X", "-q", "-At"]
PSQL_ARGS = [*PSQL, "-v", "ON_ERROR_STOP=1"]

USERS: dict[str, dict[str, Any]] = {
    "u_pro": {
        "plan": "pro",
        "seats": 5,
        "tags": ["vip", 5],
        "email": "a@example.com",
        "vip": True,
        "created_at": "2026-01-09T12:00:00Z",
        "renews_at": "2026-01-11T00:00:00+01:00",
        "cio_subscription_preferences": {"topics": {"offers": True}},
        "first name": "Ada",
    },
    "u_team": {
        "plan": "team",
        "seats": "5",
        "tags": ["vipish"],
        "email": "b@other.org",
        "vip": "true",
        "created_at": 1767225600,  # 2026-01-01T00:00:00Z
        "renews_at": "2026-02-30",  # not a date: must not break Postgres
        "cio_subscription_preferences": {"topics": {"news": False}},
    },
    "u_free": {
        "plan": "free",
        "seats": 12.5,
        "tags": "vip list",
        "created_at": "2025-12-01",
        "renews_at": "2028-02-29T10:00:00",  # a real leap day
        "unsubscribed": True,
    },
    "u_bare": {"created_at": "yesterday", "renews_at": "2026-02-29"},  # not a leap year
    "u_none": {},
}
EVENTS: list[tuple[str, str, datetime, dict[str, Any]]] = [
    ("u_pro", "order", AS_OF - DAY, {"amount": 80, "item": {"sku": "A1"}, "items": [{"sku": "B"}]}),
    ("u_pro", "order", AS_OF - 3 * DAY, {"amount": 20, "coupon": None}),
    ("u_team", "order", AS_OF - 10 * DAY, {"amount": "90", "tags": ["sale"]}),
    ("u_team", "login", AS_OF, {"at": "2026-01-10T11:00:00Z"}),
    ("u_free", "login", AS_OF - DAY, {"at": 1768042800}),
    ("u_free", "order", AS_OF + DAY, {"amount": 500}),
]
LEDGER: list[tuple[str, str, str, str, datetime]] = [
    ("u_pro", "sent", "email", "welcome", AS_OF - DAY),
    ("u_pro", "opened", "email", "welcome", AS_OF - 2 * DAY),
    ("u_team", "failed", "sms", "nudge", AS_OF - 10 * DAY),
]
SEGMENT_VIP = ("u_pro", "u_free")


def attr(name: str, op: str, value: Any) -> Attribute:
    return Attribute(name, Comparison(op, value))


def where(path: str, op: str, value: Any) -> PropertyFilter:
    return PropertyFilter(tuple(path.split(".")), Comparison(op, value))


CONDITIONS: dict[str, Condition] = {
    "everyone": Everyone(),
    "eq_str": attr("plan", "eq", "pro"),
    "eq_num": attr("seats", "eq", 5),
    "eq_bool": attr("vip", "eq", True),
    "ne": attr("plan", "ne", "pro"),
    "gt": attr("seats", "gt", 5),
    "gte": attr("seats", "gte", 5),
    "lt_str": attr("plan", "lt", "q"),
    "lte_time": attr("created_at", "lte", "2026-01-01T00:00:00Z"),
    "in": attr("plan", "in", ["team", "free", 5]),
    "contains_str": attr("email", "contains", "@example"),
    "contains_array": attr("tags", "contains", "vip"),
    "contains_array_num": attr("tags", "contains", 5),
    "starts_with": attr("email", "starts_with", "b@"),
    "exists": attr("plan", "exists", True),
    "not_exists": attr("plan", "exists", False),
    "spaced_name": attr("first name", "eq", "Ada"),
    "newer_than": attr("created_at", "newer_than", 2 * DAY),
    "older_than": attr("created_at", "older_than", 5 * DAY),
    "within_next": attr("renews_at", "within_next", 30 * DAY),
    "within_next_far": attr("renews_at", "within_next", 1000 * DAY),
    "before": attr("created_at", "before", datetime(2026, 1, 1)),
    "after": attr("created_at", "after", datetime(2025, 12, 31)),
    "performed": Performed("order"),
    "performed_eq0": Performed("order", times=Comparison("eq", 0)),
    "performed_within": Performed("order", within=3 * DAY),
    "performed_times_gt": Performed("order", times=Comparison("gt", 1)),
    "performed_lte": Performed("login", times=Comparison("lte", 0)),
    "where_nested": Performed("order", where=(where("item.sku", "eq", "A1"),)),
    "where_index": Performed("order", where=(where("items.0.sku", "eq", "B"),)),
    "where_gte": Performed("order", where=(where("amount", "gte", 50),)),
    "where_missing": Performed("order", where=(where("coupon", "exists", False),)),
    "where_ne": Performed("order", where=(where("coupon", "ne", "X"),)),
    "where_contains": Performed("order", where=(where("tags", "contains", "sale"),)),
    "where_newer": Performed(
        "login", where=(where("at", "newer_than", 2 * 3600 * timedelta(seconds=1)),)
    ),
    "all_any_not": All(
        (
            AnyOf((attr("plan", "eq", "pro"), attr("plan", "eq", "free"))),
            Not(Performed("login")),
        )
    ),
    "in_segment": InSegment("vip"),
    "not_in_segment": Not(InSegment("vip")),
    "message_sent": MessageCondition("sent"),
    "message_opened_within": MessageCondition("opened", within=DAY * 3),
    "message_filters": MessageCondition("failed", channel="sms", template="nudge"),
    "message_twice": MessageCondition("sent", times=Comparison("eq", 2)),
    "subscribed_news": Subscription("news", True),
    "unsubscribed_news": Subscription("news", False),
    "subscribed_offers": Subscription("offers", True),
    "bucket": RandomBucket(50, "exp"),
    "bucket_hostile_salt": RandomBucket(100, "x'; drop table users; --{{"),
    "hostile_value": attr("plan", "eq", "x'; drop table users; --"),
}


def _duckdb() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(
        "create table users (user_id varchar, traits json);"
        "create table events (user_id varchar, event varchar, timestamp timestamp, properties json);"
        "create table ledger (user_id varchar, status varchar, channel varchar, journey varchar,"
        " template varchar, as_of timestamp);"
        "create table seg_vip (user_id varchar);"
    )
    for user, traits in USERS.items():
        con.execute("insert into users values (?, ?)", [user, json.dumps(traits)])
    for user, event, at, properties in EVENTS:
        con.execute(
            "insert into events values (?, ?, ?, ?)", [user, event, at, json.dumps(properties)]
        )
    for user, status, channel, template, at in LEDGER:
        con.execute(
            "insert into ledger values (?, ?, ?, 'j', ?, ?)", [user, status, channel, template, at]
        )
    for user in SEGMENT_VIP:
        con.execute("insert into seg_vip values (?)", [user])
    return con


def _pg_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _postgres_setup(schema: str) -> str:
    rows = [
        f"create schema {schema}; set search_path to {schema};",
        "create table users (user_id text, traits jsonb);",
        "create table events (user_id text, event text, timestamp timestamp, properties jsonb);",
        "create table ledger (user_id text, status text, channel text, journey text,"
        " template text, as_of timestamp);",
        "create table seg_vip (user_id text);",
        "create table canary (x int); insert into canary values (1);",
    ]
    for user, traits in USERS.items():
        rows.append(
            f"insert into users values ({_pg_literal(user)}, {_pg_literal(json.dumps(traits))});"
        )
    for user, event, at, properties in EVENTS:
        rows.append(
            f"insert into events values ({_pg_literal(user)}, {_pg_literal(event)},"
            f" '{at.isoformat(sep=' ')}', {_pg_literal(json.dumps(properties))});"
        )
    for user, status, channel, template, at in LEDGER:
        rows.append(
            f"insert into ledger values ({_pg_literal(user)}, '{status}', '{channel}', 'j',"
            f" '{template}', '{at.isoformat(sep=' ')}');"
        )
    rows += [f"insert into seg_vip values ({_pg_literal(user)});" for user in SEGMENT_VIP]
    return "\n".join(rows)


def _psql(script: str) -> str:
    done = subprocess.run(PSQL_ARGS, input=script, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    if shutil.which("psql") is None:
        pytest.skip("psql is not installed")
    probe = subprocess.run([*PSQL, "-c", "select 1"], capture_output=True, text=True, timeout=10)
    if probe.returncode != 0:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 is not reachable: {probe.stderr.strip()}")
    schema = f"nudge_portability_{secrets.token_hex(4)}"
    _psql(_postgres_setup(schema))
    yield schema
    _psql(f"drop schema {schema} cascade;")


def test_every_condition_gives_the_same_members_on_postgres_and_duckdb(postgres: str) -> None:
    con = _duckdb()
    # One psql call: each query's members on one line, in CONDITIONS order.
    script = [f"set search_path to {postgres}; set timezone to 'America/New_York';"]
    expected: dict[str, set[str]] = {}
    for label, condition in CONDITIONS.items():
        duck_sql = compile_condition(condition, RELATIONS, topics=TOPICS)
        expected[label] = {row[0] for row in con.execute(duck_sql).fetchall()}
        pg_sql = compile_condition(condition, RELATIONS, topics=TOPICS, dialect="postgres")
        script.append(
            f"select {_pg_literal(label)} || ':' || coalesce(string_agg(user_id, ',' order by"
            f" user_id), '') from ({pg_sql}) as members;"
        )
    script.append("select 'canary:' || count(*) from canary;")
    lines = _psql("\n".join(script)).splitlines()
    found = {}
    for line in lines:
        label, _, members = line.partition(":")
        found[label] = set(filter(None, members.split(",")))
    assert found.pop("canary") == {"1"}
    assert found == expected
    # The data exercises every operator: no condition is trivially empty or everyone.
    trivial = {label for label, members in expected.items() if members in (set(), set(USERS))}
    assert trivial <= {"everyone", "bucket_hostile_salt", "hostile_value", "performed_lte"}


def test_postgres_answers_are_the_intended_ones(postgres: str) -> None:
    """Spot checks of the shared answers on the cases dialects disagree on most easily."""
    con = _duckdb()

    def members(label: str) -> set[str]:
        sql = compile_condition(CONDITIONS[label], RELATIONS, topics=TOPICS)
        return {row[0] for row in con.execute(sql).fetchall()}

    assert members("eq_num") == {"u_pro"}  # "5" is not 5
    assert members("within_next") == {"u_pro"}  # offset honoured; 2026-02-30 is no date
    assert members("within_next_far") == {"u_pro", "u_free"}  # 2028-02-29 is, 2026-02-29 is not
    assert members("lte_time") == {"u_team", "u_free"}  # unix seconds and a date-only string
    assert members("contains_array_num") == {"u_pro"}
    assert members("hostile_value") == set()


def _trait_timestamp(dialect: str, value: str) -> str:
    """The generated dbt macro's implementation for ``dialect``, rendered over ``value``."""
    call = f"{{{{ {dialect}__trait_timestamp({value!r}) }}}}"
    return jinja2.Environment().from_string(trait_timestamp_macro() + call).render().strip()


def test_the_generated_trait_timestamp_macro_reads_the_same_times_on_postgres_and_duckdb(
    postgres: str,
) -> None:
    """int_user_trait_values stores what this macro reads; time-window segments rely on it
    agreeing with the compiled conditions on every warehouse."""
    traits = ("created_at", "renews_at")
    duck = _duckdb()
    expected = {}
    for trait in traits:
        parsed = _trait_timestamp("duckdb", f"json(traits -> '$.{trait}')")
        for user, moment in duck.execute(f"select user_id, {parsed} from users").fetchall():
            expected[f"{user}.{trait}"] = moment.isoformat() if moment else ""
    script = [f"set search_path to {postgres}; set timezone to 'America/New_York';"]
    for trait in traits:
        parsed = _trait_timestamp("postgres", f"(traits -> '{trait}')")
        script.append(
            f"select user_id || '.{trait}|' || coalesce(replace(({parsed})::text, ' ', 'T'), '')"
            " from users;"
        )
    found = dict(line.split("|") for line in _psql("\n".join(script)).splitlines())
    assert found == expected
    assert expected["u_pro.renews_at"] == "2026-01-10T23:00:00"  # the offset is honoured
    assert expected["u_team.created_at"] == "2026-01-01T00:00:00"  # unix seconds
    assert expected["u_free.renews_at"] == "2028-02-29T10:00:00"  # a real leap day
    assert expected["u_bare.renews_at"] == expected["u_team.renews_at"] == ""  # no such days


# DuckDB names that mean nothing (or something else) on the other warehouses.
DUCKDB_ONLY = re.compile(
    r"JSON_TYPE\(|->>?\s*'|LIST_FILTER|JSON\[\]|LAMBDA|TRY_CAST\(.*AS TIMESTAMPTZ|REGEXP_MATCHES|"
    r"JSON_EXTRACT_PATH_TEXT|JSON_EXTRACT_SCALAR|GET_JSON_OBJECT|PARSE_JSON|AT TIME ZONE",
    re.IGNORECASE,
)
# JSON_TYPE exists on BigQuery (with its own type names, which the compiler uses there).
ALLOWED = {"bigquery": {"JSON_TYPE("}}


@pytest.mark.parametrize("dialect", ["snowflake", "bigquery", "databricks", "postgres"])
def test_other_dialects_parse_back_and_use_no_duckdb_functions(dialect: str) -> None:
    for label, condition in CONDITIONS.items():
        sql = compile_condition(condition, RELATIONS, topics=TOPICS, dialect=dialect)
        parsed = sqlglot.parse_one(sql, read=dialect, error_level=ErrorLevel.RAISE)
        parsed.sql(dialect=dialect, unsupported_level=ErrorLevel.RAISE)
        leftovers = {m.group(0).upper() for m in DUCKDB_ONLY.finditer(sql)}
        leftovers -= ALLOWED.get(dialect, set())
        if dialect == "postgres":  # postgres has AT TIME ZONE and ->> on jsonb (#>> used here)
            leftovers -= {"AT TIME ZONE"}
        assert not leftovers, f"{dialect} {label}: {leftovers}\n{sql}"


# --- conditions judged per journey entry (compile_entry_condition) ---------------------------------

# (entry, user, trigger_at, started_at, step_reached_at, trigger properties)
ENTRIES: list[tuple[str, str, datetime, datetime, datetime, dict[str, Any]]] = [
    (
        "n1",
        "u_pro",
        AS_OF - 2 * DAY,
        AS_OF - 2 * DAY,
        AS_OF - 2 * DAY,
        {"amount": 80, "sku": "A1", "prefix": "A"},
    ),
    ("n2", "u_pro", AS_OF - 4 * DAY, AS_OF - 4 * DAY, AS_OF - DAY / 2, {"amount": "80"}),
    ("n3", "u_team", AS_OF - 11 * DAY, AS_OF - 10 * DAY, AS_OF - 10 * DAY, {"amount": "90"}),
    ("n4", "u_team", AS_OF - 11 * DAY, AS_OF - 11 * DAY, AS_OF, {}),
    (
        "n5",
        "u_free",
        AS_OF - 2 * DAY,
        AS_OF - 2 * DAY,
        AS_OF - 2 * DAY,
        {"at": "2026-01-10T10:00:00Z"},
    ),
]
ENTRY_RELATIONS = Relations(
    users="(select u.*, n.entry_id, n.entry_trigger_at, n.entry_started_at,"
    " n.entry_step_reached_at, n.entry_trigger_properties"
    " from users u join entries n on n.user_id = u.user_id)",
    events=RELATIONS.events,
    ledger=RELATIONS.ledger,
    segment=RELATIONS.segment,
    as_of=RELATIONS.as_of,
)


def keyed(path: str, op: str, trigger_path: str) -> PropertyFilter:
    return where(path, op, TriggerRef(tuple(trigger_path.split("."))))


ENTRY_CONDITIONS: dict[str, tuple[Condition, set[str]]] = {
    "since_trigger": (Performed("order", since="trigger"), {"n1", "n2", "n3", "n4"}),
    "since_entry": (Performed("order", since="entry"), {"n1", "n2", "n3", "n4"}),
    "since_step": (Performed("order", since="step"), {"n1", "n3"}),
    "since_and_within": (Performed("order", since="trigger", within=2 * DAY), {"n1", "n2"}),
    "since_times_eq0": (Performed("order", Comparison("eq", 0), since="step"), {"n2", "n4", "n5"}),
    # n1 keys the number 80 (u_pro ordered 80), n2 the string "80" (not 80), n3 the string "90"
    # (u_team's order amount is the string "90").
    "keyed_eq": (Performed("order", where=(keyed("amount", "eq", "amount"),)), {"n1", "n3"}),
    "keyed_ne": (Performed("order", where=(keyed("amount", "ne", "amount"),)), {"n1", "n2"}),
    "keyed_nested": (Performed("order", where=(keyed("item.sku", "eq", "sku"),)), {"n1"}),
    "keyed_starts_with": (
        Performed("order", where=(keyed("item.sku", "starts_with", "prefix"),)),
        {"n1"},
    ),
    "keyed_gt_number": (Performed("order", where=(keyed("amount", "gt", "amount"),)), set()),
    "keyed_lte": (Performed("order", where=(keyed("amount", "lte", "amount"),)), {"n1", "n3"}),
    "keyed_gt_time": (Performed("login", where=(keyed("at", "gt", "at"),)), {"n5"}),
    "keyed_missing": (
        Not(Performed("order", where=(keyed("coupon", "ne", "coupon"),))),
        {"n1", "n2", "n3", "n4", "n5"},
    ),
    "keyed_and_unscoped": (
        All((attr("plan", "eq", "team"), Performed("order", since="trigger"))),
        {"n3", "n4"},
    ),
}


def _entries_duckdb() -> duckdb.DuckDBPyConnection:
    con = _duckdb()
    con.execute(
        "create table entries (entry_id varchar, user_id varchar, entry_trigger_at timestamp,"
        " entry_started_at timestamp, entry_step_reached_at timestamp,"
        " entry_trigger_properties json)"
    )
    for entry, user, trigger_at, started, reached, properties in ENTRIES:
        con.execute(
            "insert into entries values (?, ?, ?, ?, ?, ?)",
            [entry, user, trigger_at, started, reached, json.dumps(properties)],
        )
    return con


def test_entry_conditions_give_the_same_entries_on_postgres_and_duckdb(postgres: str) -> None:
    """since and {trigger: ...} compile per entry, with the intended answers, on both."""
    con = _entries_duckdb()
    script = [
        f"set search_path to {postgres}; set timezone to 'America/New_York';",
        "create temp table entries (entry_id text, user_id text, entry_trigger_at timestamp,"
        " entry_started_at timestamp, entry_step_reached_at timestamp,"
        " entry_trigger_properties jsonb);",
    ]
    for entry, user, trigger_at, started, reached, properties in ENTRIES:
        times = ", ".join(f"'{t.isoformat(sep=' ')}'" for t in (trigger_at, started, reached))
        script.append(
            f"insert into entries values ('{entry}', '{user}', {times},"
            f" {_pg_literal(json.dumps(properties))});"
        )
    found_duck: dict[str, set[str]] = {}
    for label, (condition, _) in ENTRY_CONDITIONS.items():
        duck_sql = compile_entry_condition(condition, ENTRY_RELATIONS, topics=TOPICS)
        found_duck[label] = {row[0] for row in con.execute(duck_sql).fetchall()}
        pg_sql = compile_entry_condition(
            condition, ENTRY_RELATIONS, topics=TOPICS, dialect="postgres"
        )
        script.append(
            f"select {_pg_literal(label)} || ':' || coalesce(string_agg(entry_id, ',' order by"
            f" entry_id), '') from ({pg_sql}) as members;"
        )
    found_pg = {}
    for line in _psql("\n".join(script)).splitlines():
        label, _, members = line.partition(":")
        found_pg[label] = set(filter(None, members.split(",")))
    assert found_pg == found_duck
    assert found_duck == {label: wanted for label, (_, wanted) in ENTRY_CONDITIONS.items()}


def test_scoped_conditions_are_refused_outside_a_journey() -> None:
    for condition in (
        Performed("order", since="entry"),
        Performed("order", where=(keyed("amount", "eq", "amount"),)),
    ):
        with pytest.raises(ConditionError, match="allowed only in a journey's conditions"):
            compile_condition(condition, RELATIONS)
