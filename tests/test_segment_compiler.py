"""The condition compiler against a real in-memory DuckDB holding the warehouse contract's relations."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
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
    Content,
    Everyone,
    InSegment,
    MessageCondition,
    Not,
    Origin,
    Performed,
    PropertyFilter,
    RandomBucket,
    Segment,
    Subscription,
    Topic,
)
from nudge.core.segments.compiler import (
    ConditionError,
    Relations,
    bucket_of,
    compile_condition,
    warehouse_relations,
)
from nudge.core.segments.dbt_models import generated_segment_models, segment_model_sql

AS_OF = datetime(2026, 1, 10, 12, 0, 0)
DAY = timedelta(days=1)
TOPICS = (Topic("news", default_subscribed=True), Topic("offers", default_subscribed=False))

RELATIONS = Relations(
    users="users",
    events="events",
    ledger="ledger",
    segment=lambda name: f'"seg_{name}"',
    as_of=f"cast('{AS_OF.isoformat(sep=' ')}' as timestamp)",
)

SCHEMA = """
create table users (user_id varchar, traits json);
create table events (
    message_id varchar, user_id varchar, type varchar, event varchar, name varchar,
    timestamp timestamp, properties json, context json
);
create table ledger (
    idempotency_key varchar, user_id varchar, journey varchar, step varchar, channel varchar,
    template varchar, status varchar, queued_at timestamp, completed_at timestamp,
    as_of timestamp
);
"""


class Warehouse:
    """A DuckDB connection with helpers to add rows and evaluate conditions."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.counter = 0

    def user(self, user_id: str, **traits: Any) -> None:
        self.con.execute("insert into users values (?, ?)", [user_id, json.dumps(traits)])

    def event(self, user_id: str, event: str, at: datetime, **properties: Any) -> None:
        self.counter += 1
        self.con.execute(
            "insert into events values (?, ?, 'track', ?, null, ?, ?, '{}')",
            [f"m{self.counter}", user_id, event, at, json.dumps(properties)],
        )

    def message(
        self, user_id: str, status: str, at: datetime | None = None, **columns: Any
    ) -> None:
        self.counter += 1
        row = {"channel": "email", "journey": "j", "step": "s", "template": "t"} | columns
        queued_at = row.pop("queued_at", at)
        completed_at = row.pop("completed_at", at)
        self.con.execute(
            "insert into ledger values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [f"k{self.counter}", user_id, row["journey"], row["step"], row["channel"],
             row["template"], status, queued_at, completed_at, row.get("as_of", at)],
        )  # fmt: skip

    def segment(self, name: str, *members: str) -> None:
        table = f'"seg_{name}"'
        self.con.execute(f"create table {table} (user_id varchar)")
        for member in members:
            self.con.execute(f"insert into {table} values (?)", [member])

    def members(self, condition: Condition, relations: Relations = RELATIONS) -> set[str]:
        sql = compile_condition(condition, relations, topics=TOPICS)
        rows = self.con.execute(sql).fetchall()
        assert len(rows) == len({r[0] for r in rows}), "user ids must be distinct"
        return {r[0] for r in rows}


@pytest.fixture
def wh() -> Iterator[Warehouse]:
    con = duckdb.connect()
    con.execute(SCHEMA)
    yield Warehouse(con)
    con.close()


def attr(name: str, op: str, value: Any) -> Attribute:
    return Attribute(name, Comparison(op, value))


# --- everyone, attributes ------------------------------------------------------------------------


def test_everyone_is_every_user_row(wh: Warehouse) -> None:
    wh.user("u1")
    wh.user("u2", plan="pro")
    assert wh.members(Everyone()) == {"u1", "u2"}


@pytest.fixture
def typed(wh: Warehouse) -> Warehouse:
    """Users whose trait `v` has each JSON type (and one without it)."""
    wh.user("int5", v=5)
    wh.user("float5", v=5.0)
    wh.user("str5", v="5")
    wh.user("strb", v="b")
    wh.user("true", v=True)
    wh.user("false", v=False)
    wh.user("list", v=["5", 5, "b"])
    wh.user("obj", v={"a": 5})
    wh.user("null", v=None)
    wh.user("missing")
    return wh


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("eq", 5, {"int5", "float5"}),
        ("eq", "5", {"str5"}),
        ("eq", True, {"true"}),
        ("eq", False, {"false"}),
        ("ne", 5, {"str5", "strb", "true", "false", "list", "obj", "null", "missing"}),
        ("ne", "b", {"int5", "float5", "str5", "true", "false", "list", "obj", "null", "missing"}),
        ("ne", False, {"int5", "float5", "str5", "strb", "true", "list", "obj", "null", "missing"}),
        ("in", ["b", 5], {"int5", "float5", "strb"}),
        ("in", ["5"], {"str5"}),
        ("in", [], set()),
        ("gt", 4, {"int5", "float5"}),
        ("gte", 5, {"int5", "float5"}),
        ("lt", 5, set()),
        ("lte", 5.0, {"int5", "float5"}),
        ("gt", "a", {"strb"}),  # strings only with strings: "5" < "a" and numbers never match
        ("lt", "a", {"str5"}),
        ("contains", "5", {"str5", "list"}),
        ("contains", 5, {"list"}),
        ("contains", "b", {"strb", "list"}),
        ("contains", True, set()),
        ("starts_with", "5", {"str5"}),
        ("exists", True, {"int5", "float5", "str5", "strb", "true", "false", "list", "obj"}),
        ("exists", False, {"null", "missing"}),
    ],
)
def test_attribute_operators_are_typed(
    typed: Warehouse, op: str, value: Any, expected: set[str]
) -> None:
    assert typed.members(attr("v", op, value)) == expected


def test_contains_on_arrays_is_typed_per_element(wh: Warehouse) -> None:
    wh.user("strings", tags=["vip", "beta"])
    wh.user("numbers", tags=[1, 2])
    wh.user("bools", tags=[True])
    wh.user("substring", tags="vipers")
    assert wh.members(attr("tags", "contains", "vip")) == {"strings", "substring"}
    assert wh.members(attr("tags", "contains", 1)) == {"numbers"}
    assert wh.members(attr("tags", "contains", "1")) == set()
    assert wh.members(attr("tags", "contains", True)) == {"bools"}


def test_trait_names_are_keys_not_paths(wh: Warehouse) -> None:
    wh.user("dotted", **{"a.b": 1})
    wh.user("nested", a={"b": 1})
    assert wh.members(attr("a.b", "eq", 1)) == {"dotted"}


@pytest.fixture
def times(wh: Warehouse) -> Warehouse:
    """Users whose trait `t` is a timestamp in each accepted form, relative to AS_OF."""
    wh.user("iso_now", t="2026-01-10T12:00:00Z")
    wh.user("iso_offset", t="2026-01-10T14:00:00+02:00")  # = AS_OF
    wh.user("naive_minus_1d", t="2026-01-09 12:00:00")  # AS_OF - 1d exactly
    wh.user("unix_minus_2d", t=(AS_OF - 2 * DAY).replace(tzinfo=UTC).timestamp())
    wh.user("unix_plus_1d", t=int((AS_OF + DAY).replace(tzinfo=UTC).timestamp()))
    wh.user("iso_plus_2d", t="2026-01-12T12:00:00.000001Z")  # just past AS_OF + 2d
    wh.user("date_only", t="2026-01-05")
    wh.user("garbage", t="soon")
    wh.user("epoch_ms", t=int(AS_OF.replace(tzinfo=UTC).timestamp() * 1000))
    wh.user("bool", t=True)
    wh.user("missing")
    return wh


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("newer_than", DAY, {"iso_now", "iso_offset", "naive_minus_1d"}),
        ("newer_than", 2 * DAY, {"iso_now", "iso_offset", "naive_minus_1d", "unix_minus_2d"}),
        ("older_than", DAY, {"naive_minus_1d", "unix_minus_2d", "date_only"}),
        ("older_than", 2 * DAY, {"unix_minus_2d", "date_only"}),
        ("within_next", DAY, {"iso_now", "iso_offset", "unix_plus_1d"}),
        ("within_next", 2 * DAY, {"iso_now", "iso_offset", "unix_plus_1d"}),
        (
            "before",
            datetime(2026, 1, 10, 12, tzinfo=UTC),
            {"naive_minus_1d", "unix_minus_2d", "date_only"},
        ),
        ("after", datetime(2026, 1, 10, 12, tzinfo=UTC), {"unix_plus_1d", "iso_plus_2d"}),
        ("after", datetime(2026, 1, 10, 13, tzinfo=UTC), {"unix_plus_1d", "iso_plus_2d"}),
        ("gte", "2026-01-10T12:00:00Z", {"iso_now", "iso_offset", "unix_plus_1d", "iso_plus_2d"}),
        ("lt", "2026-01-09", {"date_only", "unix_minus_2d"}),
    ],
)
def test_timestamp_operators(times: Warehouse, op: str, value: Any, expected: set[str]) -> None:
    assert times.members(attr("t", op, value)) == expected


def test_timestamps_do_not_depend_on_the_session_time_zone(times: Warehouse) -> None:
    times.con.execute("set TimeZone = 'America/New_York'")
    assert times.members(attr("t", "newer_than", DAY)) == {
        "iso_now",
        "iso_offset",
        "naive_minus_1d",
    }
    assert times.members(attr("t", "within_next", DAY)) == {"iso_now", "iso_offset", "unix_plus_1d"}


def test_unusable_operands_are_refused_with_the_attribute_named() -> None:
    for op, value in [("gt", True), ("gt", [1]), ("eq", None), ("eq", [1]), ("in", "x"),
                      ("starts_with", 1), ("newer_than", "1d"), ("before", "tomorrow"), ("exists", "yes")]:  # fmt: skip
        with pytest.raises(ConditionError, match="attribute 'plan'"):
            compile_condition(attr("plan", op, value), RELATIONS)


# --- performed ------------------------------------------------------------------------------------


def test_performed_default_times_and_exact_event_names(wh: Warehouse) -> None:
    for user in ("buyer", "viewer", "nobody"):
        wh.user(user)
    wh.event("buyer", "order_completed", AS_OF - DAY)
    wh.event("viewer", "Order_Completed", AS_OF - DAY)
    wh.event("viewer", "order_completed ", AS_OF - DAY)
    assert wh.members(Performed("order_completed")) == {"buyer"}


def test_performed_window_excludes_its_start_and_includes_as_of(wh: Warehouse) -> None:
    for user in ("at_start", "after_start", "at_as_of", "future"):
        wh.user(user)
    wh.event("at_start", "e", AS_OF - DAY)
    wh.event("after_start", "e", AS_OF - DAY + timedelta(microseconds=1))
    wh.event("at_as_of", "e", AS_OF)
    wh.event("future", "e", AS_OF + timedelta(microseconds=1))
    assert wh.members(Performed("e", within=DAY)) == {"after_start", "at_as_of"}
    assert wh.members(Performed("e")) == {"at_start", "after_start", "at_as_of"}


def test_performed_times_zero_includes_users_without_any_events(wh: Warehouse) -> None:
    for user in ("none", "old", "recent", "twice"):
        wh.user(user)
    wh.event("old", "e", AS_OF - 40 * DAY)
    wh.event("recent", "e", AS_OF - DAY)
    wh.event("twice", "e", AS_OF - DAY)
    wh.event("twice", "e", AS_OF - 2 * DAY)
    assert wh.members(Performed("e", Comparison("eq", 0), within=30 * DAY)) == {"none", "old"}
    assert wh.members(Performed("e", Comparison("lt", 2))) == {"none", "old", "recent"}
    assert wh.members(Performed("e", Comparison("lte", 1), within=30 * DAY)) == {
        "none",
        "old",
        "recent",
    }
    assert wh.members(Performed("e", Comparison("gt", 1))) == {"twice"}
    assert wh.members(Performed("e", Comparison("eq", 2))) == {"twice"}
    assert wh.members(Performed("e", Comparison("gte", 2), within=30 * DAY)) == {"twice"}


def test_lapsed_buyers_example_from_dsl(wh: Warehouse) -> None:
    wh.user("lapsed", email="a@example.com")
    wh.user("active", email="b@example.com")
    wh.user("never", email="c@example.com")
    wh.user("lapsed_no_email")
    for user in ("lapsed", "lapsed_no_email"):
        wh.event(user, "order_completed", AS_OF - 45 * DAY)
    wh.event("active", "order_completed", AS_OF - 2 * DAY)
    condition = All((
        Performed("order_completed", Comparison("gte", 1)),
        Performed("order_completed", Comparison("eq", 0), within=30 * DAY),
        attr("email", "exists", True),
    ))  # fmt: skip
    assert wh.members(condition) == {"lapsed"}


def test_where_filters_on_nested_paths_with_typed_operators(wh: Warehouse) -> None:
    for user in ("a", "b", "c", "d", "e"):
        wh.user(user)
    wh.event(
        "a",
        "order",
        AS_OF - DAY,
        total=120,
        cart={"coupon": {"code": "SPRING"}},
        items=[{"sku": "x1"}],
    )
    wh.event(
        "b",
        "order",
        AS_OF - DAY,
        total="120",
        cart={"coupon": {"code": "WINTER"}},
        items=[{"sku": "y"}],
    )
    wh.event("c", "order", AS_OF - DAY, total=80)
    wh.event("d", "order", AS_OF - DAY, total=150, cart={"coupon": None})
    wh.event("e", "refund", AS_OF - DAY, total=500)

    def where(path: str, op: str, value: Any) -> Performed:
        return Performed(
            "order", where=(PropertyFilter(tuple(path.split(".")), Comparison(op, value)),)
        )

    assert wh.members(where("total", "gte", 100)) == {"a", "d"}
    assert wh.members(where("cart.coupon.code", "eq", "SPRING")) == {"a"}
    assert wh.members(where("cart.coupon.code", "starts_with", "WIN")) == {"b"}
    assert wh.members(where("cart.coupon.code", "ne", "SPRING")) == {"b", "c", "d"}
    assert wh.members(where("cart.coupon.code", "exists", False)) == {"c", "d"}
    assert wh.members(where("items.0.sku", "eq", "x1")) == {"a"}
    both = Performed(
        "order",
        where=(
            PropertyFilter(("total",), Comparison("gt", 100)),
            PropertyFilter(("cart", "coupon", "code"), Comparison("exists", False)),
        ),
    )
    assert wh.members(both) == {"d"}
    assert wh.members(Performed("order", Comparison("eq", 0), where=both.where)) == {
        "a",
        "b",
        "c",
        "e",
    }


# --- in_segment, nesting ------------------------------------------------------------------------


def test_in_segment_and_nested_all_any_not(wh: Warehouse) -> None:
    for user, plan in (("u1", "pro"), ("u2", "free"), ("u3", "pro"), ("u4", None)):
        wh.user(user, plan=plan)
    wh.segment("vip", "u1", "u2")
    wh.segment("empty")
    assert wh.members(InSegment("vip")) == {"u1", "u2"}
    assert wh.members(InSegment("empty")) == set()
    assert wh.members(Not(InSegment("vip"))) == {"u3", "u4"}
    pro = attr("plan", "eq", "pro")
    assert wh.members(All((InSegment("vip"), pro))) == {"u1"}
    assert wh.members(AnyOf((InSegment("vip"), pro))) == {"u1", "u2", "u3"}
    # not over a comparison on a missing trait: the inner is false, so the negation holds
    assert wh.members(Not(pro)) == {"u2", "u4"}
    assert wh.members(Not(AnyOf((Not(InSegment("vip")), Not(pro))))) == {"u1"}
    assert wh.members(All((Everyone(), Not(Everyone())))) == set()


# --- message -------------------------------------------------------------------------------------


def test_message_statuses_follow_the_delivery_funnel(wh: Warehouse) -> None:
    statuses = (
        "queued",
        "sent",
        "delivered",
        "opened",
        "clicked",
        "bounced",
        "failed",
        "converted",
    )
    for status in statuses:
        wh.user(status)
        wh.message(status, status, AS_OF - DAY)
    assert wh.members(MessageCondition("sent")) == {
        "sent",
        "delivered",
        "opened",
        "clicked",
        "bounced",
        "converted",
    }
    assert wh.members(MessageCondition("delivered")) == {
        "delivered",
        "opened",
        "clicked",
        "converted",
    }
    assert wh.members(MessageCondition("opened")) == {"opened", "clicked"}
    assert wh.members(MessageCondition("clicked")) == {"clicked"}
    assert wh.members(MessageCondition("failed")) == {"failed"}
    assert wh.members(MessageCondition("bounced")) == {"bounced"}


def test_message_filters_window_and_times(wh: Warehouse) -> None:
    for user in ("email", "sms", "old", "queued_only", "none", "twice"):
        wh.user(user)
    wh.message("email", "sent", AS_OF - DAY, journey="onboarding", template="welcome")
    wh.message("sms", "sent", AS_OF - DAY, channel="sms", journey="onboarding")
    wh.message("old", "sent", AS_OF - 7 * DAY)
    # a message counts at the as_of of the run that handled it, not at wall-clock completed_at
    wh.message("old", "sent", AS_OF - DAY, as_of=AS_OF - 7 * DAY)
    wh.message("queued_only", "sent", AS_OF + 30 * DAY, completed_at=None, as_of=AS_OF - DAY)
    wh.message("twice", "sent", AS_OF - 7 * DAY)  # exactly at the window start: not counted
    wh.message("twice", "sent", AS_OF)
    wh.message("twice", "sent", AS_OF + timedelta(seconds=1))  # after as_of: not seen
    assert wh.members(MessageCondition("sent", channel="email", journey="onboarding")) == {"email"}
    assert wh.members(MessageCondition("sent", template="welcome")) == {"email"}
    assert wh.members(MessageCondition("sent", within=7 * DAY)) == {
        "email",
        "sms",
        "queued_only",
        "twice",
    }
    assert wh.members(MessageCondition("sent", times=Comparison("eq", 0), within=7 * DAY)) == {
        "old",
        "none",
    }
    assert wh.members(MessageCondition("sent", times=Comparison("eq", 2))) == {"old", "twice"}


# --- subscription --------------------------------------------------------------------------------


def test_subscription_defaults_preferences_and_global_unsubscribe(wh: Warehouse) -> None:
    def prefs(**topics: Any) -> dict[str, Any]:
        return {"topics": topics}

    wh.user("default")
    wh.user("news_off", cio_subscription_preferences=prefs(news=False))
    wh.user("offers_on", cio_subscription_preferences=prefs(offers=True))
    # Text spellings read as the senders read them (nudge.core.opt_out): "false" is off.
    wh.user("spelled", cio_subscription_preferences=prefs(news="false", offers="Yes"))
    wh.user("unreadable", cio_subscription_preferences=prefs(news="nope", offers="on"))
    wh.user("global", unsubscribed=True, cio_subscription_preferences=prefs(news=True, offers=True))
    wh.user("global_text", unsubscribed="yes")
    wh.user("global_false", unsubscribed=False)
    everyone = {
        "default", "news_off", "offers_on", "spelled", "unreadable", "global", "global_text",
        "global_false",
    }  # fmt: skip
    news = {"default", "offers_on", "unreadable", "global_false"}
    assert wh.members(Subscription("news", True)) == news
    assert wh.members(Subscription("news", False)) == everyone - news
    assert wh.members(Subscription("offers", True)) == {"offers_on", "spelled"}
    assert wh.members(Subscription("offers", False)) == everyone - {"offers_on", "spelled"}


def test_subscription_to_an_undeclared_topic_is_refused() -> None:
    with pytest.raises(ConditionError, match="undeclared topic 'nope'"):
        compile_condition(Subscription("nope", True), RELATIONS, topics=TOPICS)


# --- random_bucket -------------------------------------------------------------------------------


def test_random_bucket_agrees_with_bucket_of(wh: Warehouse) -> None:
    users = [f"user-{i}" for i in range(400)] + ["ünïcødé", "a'b", ""]
    for user in users:
        wh.user(user)
    for salt, percent in (("", 50), ("holdout", 10), ("x'y", 33.5), ("s", 0), ("s", 100)):
        expected = {u for u in users if bucket_of(salt, u) < percent}
        assert wh.members(RandomBucket(percent, salt)) == expected
    share = sum(bucket_of("holdout", u) < 10 for u in users) / len(users)
    assert 0.05 < share < 0.15
    assert bucket_of("onboarding", "u1") == bucket_of("onboarding", "u1")
    assert {bucket_of("s", u) for u in users} <= set(range(100))


# --- injection -----------------------------------------------------------------------------------

HOSTILE = [
    "x'; drop table users; --",
    'x"; drop table users; --',
    "') or 1=1 --",
    "$.a') or true or ('",
    "{{ ref('users') }}",
    'a"b',
    "x'y",
    "$[*]",
    "..",
    "*/ select 1 /*",
    "\u0000",
]


@pytest.fixture
def guarded(wh: Warehouse) -> Warehouse:
    wh.user("u1", plan="pro", tags=["a"], **{'a"b': "quoted", "x'y": "apostrophe"})
    wh.user("u2")
    wh.event("u1", "order", AS_OF - DAY, total=5)
    wh.message("u1", "sent", AS_OF - DAY)
    wh.segment("vip", "u1")
    return wh


def assert_intact(wh: Warehouse) -> None:
    assert wh.con.execute("select count(*) from users").fetchone() == (2,)
    assert wh.con.execute("select count(*) from events").fetchone() == (1,)
    assert wh.con.execute("select count(*) from ledger").fetchone() == (1,)


def hostile_conditions(value: str) -> list[Condition]:
    return [
        attr("plan", "eq", value),
        attr("plan", "in", [value, value]),
        attr("plan", "contains", value),
        attr("tags", "contains", value),
        attr("plan", "starts_with", value),
        Performed(value),
        Performed("order", where=(PropertyFilter(("total",), Comparison("eq", value)),)),
        MessageCondition("sent", channel=value),
        MessageCondition("sent", journey=value, template=value),
    ]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_are_just_strings(guarded: Warehouse, value: str) -> None:
    for condition in hostile_conditions(value):
        assert guarded.members(condition) == set(), condition
        assert guarded.members(Not(condition)) == {"u1", "u2"}, condition
    assert guarded.members(RandomBucket(100, value)) == {"u1", "u2"}
    assert_intact(guarded)


@pytest.mark.parametrize("name", [h for h in HOSTILE if h not in ('a"b', "x'y")])
def test_hostile_names_match_nothing_or_are_refused(guarded: Warehouse, name: str) -> None:
    conditions: list[Condition] = [
        attr(name, "exists", True),
        attr(name, "eq", "pro"),
        Performed("order", where=(PropertyFilter((name,), Comparison("exists", True)),)),
        Performed("order", where=(PropertyFilter(("total", name), Comparison("eq", 5)),)),
    ]
    for condition in conditions:
        try:
            members = guarded.members(condition)
        except ConditionError as error:
            assert "is not allowed: use letters, digits" in str(error)
        else:
            assert members == set(), condition
    assert_intact(guarded)


def test_quotes_in_trait_names_are_refused(guarded: Warehouse) -> None:
    for name in ('a"b', "x'y", "a{{b}}", "a]b"):
        with pytest.raises(ConditionError, match="is not allowed"):
            guarded.members(attr(name, "eq", "quoted"))
    assert guarded.members(attr("first name", "exists", False)) == {"u1", "u2"}


def test_hostile_segment_and_topic_names(guarded: Warehouse) -> None:
    name = 'x"; drop table users; --'
    with pytest.raises(duckdb.CatalogException):  # the quoted name is just a missing table
        guarded.members(InSegment(name), warehouse_relations(AS_OF))
    topic = "t'); drop table users; --"
    with pytest.raises(ConditionError, match="is not allowed"):
        compile_condition(Subscription(topic, True), RELATIONS, topics=[Topic(topic)])
    assert_intact(guarded)


# --- relations and dbt models --------------------------------------------------------------------


def test_warehouse_relations_name_the_physical_tables() -> None:
    relations = warehouse_relations(datetime(2026, 1, 1, 0, 0, 3))
    sql = compile_condition(
        All((InSegment("vip"), Performed("e"), MessageCondition("sent"))), relations
    )
    for table in (
        "marts.dim_users",
        "marts.fct_events",
        "nudge.delivery_ledger",
        '"segments"."vip"',
    ):
        assert table in sql
    assert "CAST('2026-01-01 00:00:03' AS TIMESTAMP)" in sql
    aware = warehouse_relations(datetime(2026, 1, 1, 2, 0, 3, tzinfo=timezone(timedelta(hours=2))))
    assert aware.as_of == relations.as_of


def render_dbt(model: str) -> str:
    """Render a model's Jinja like dbt would, with refs resolving to this test's tables."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    return env.from_string(model).render(
        ref=lambda name: {"dim_users": "users", "fct_events": "events"}.get(name, f'"seg_{name}"'),
        source=lambda schema, table: {"delivery_ledger": "ledger"}[table],
        as_of=lambda: f"cast('{AS_OF.isoformat()}' as timestamp)",
        # A first (full) build: incremental segments read the whole relation.
        segment_incremental=lambda **_: "",
        config=lambda **_: "",
        is_incremental=lambda: False,
        segment_definition_unchanged=lambda: False,
        changed_users_only=lambda relation, changed_only: relation,
    )


def test_dbt_models_render_and_run(guarded: Warehouse) -> None:
    origin = Origin("content/segments.yml", "segment 'x'")
    content = Content(
        segments=(
            Segment("buyers", origin, All((Performed("order"), InSegment("vip"), MessageCondition("sent"))),
                    description="bought {{ something }}\nsecond line"),
            Segment("everyone_else", origin, Not(InSegment("buyers"))),
            Segment("handwritten", origin, sql="select user_id from {{ ref('dim_users') }}"),
            Segment("subscribed", origin, Subscription("news", True)),
        ),
        topics=TOPICS,
    )  # fmt: skip
    models = generated_segment_models(content)
    assert set(models) == {"buyers", "everyone_else", "handwritten", "subscribed"}
    buyers = models["buyers"]
    assert buyers.startswith("-- Generated by nudge from content/segments.yml")
    assert "Do not edit" in buyers
    for jinja in ("{{ ref('dim_users') }}", "{{ ref('fct_events') }}", "{{ ref('vip') }}",
                  "{{ source('nudge', 'delivery_ledger') }}", "{{ as_of() }}"):  # fmt: skip
        assert jinja in buyers
    assert "{{ something }}" not in buyers
    assert models["handwritten"] == "select user_id from {{ ref('dim_users') }}"
    run = guarded.con.execute
    assert {r[0] for r in run(render_dbt(buyers)).fetchall()} == {"u1"}
    run(f'create table "seg_buyers" as {render_dbt(buyers)}')
    assert {r[0] for r in run(render_dbt(models["everyone_else"])).fetchall()} == {"u2"}
    assert {r[0] for r in run(render_dbt(models["subscribed"])).fetchall()} == {"u1", "u2"}


def test_dbt_models_refuse_names_that_would_break_jinja() -> None:
    origin = Origin("content/s.yml", "segment 'bad'")
    bad = Segment("ok", origin, InSegment("x') }}{{ 7*7 }}{{ ref('y"))
    with pytest.raises(ConditionError, match=r"must match \[a-z\]"):
        segment_model_sql(bad, Content(segments=(bad,)))
    wrong = Segment("ok", origin, attr("plan", "gt", True))
    with pytest.raises(
        ConditionError, match=re.escape("content/s.yml: segment 'bad': condition: attribute 'plan'")
    ):
        segment_model_sql(wrong, Content(segments=(wrong,)))


# --- portability ---------------------------------------------------------------------------------

EVERY_KIND: dict[str, Condition] = {
    "everyone": Everyone(),
    "attribute_eq": attr("plan", "eq", "pro"),
    "attribute_number": attr("n", "gte", 5),
    "attribute_bool": attr("b", "ne", True),
    "attribute_in": attr("plan", "in", ["a", 1, False]),
    "attribute_string_order": attr("plan", "lt", "m"),
    "attribute_contains": attr("tags", "contains", "vip"),
    "attribute_starts_with": attr("plan", "starts_with", "p"),
    "attribute_exists": attr("plan", "exists", False),
    "attribute_newer_than": attr("t", "newer_than", DAY),
    "attribute_older_than": attr("t", "older_than", DAY),
    "attribute_within_next": attr("t", "within_next", timedelta(hours=6)),
    "attribute_before": attr("t", "before", datetime(2026, 1, 1, tzinfo=UTC)),
    "attribute_after": attr("t", "after", "2026-01-01T00:00:00Z"),
    "performed": Performed(
        "e", Comparison("eq", 0), DAY, (PropertyFilter(("a", "0", "b"), Comparison("eq", 1)),)
    ),
    "in_segment": InSegment("vip"),
    "message": MessageCondition("opened", "email", "j", "t", Comparison("gt", 1), DAY),
    "subscription": Subscription("offers", False),
    "random_bucket": RandomBucket(25, "salt"),
    "all_any_not": Not(All((AnyOf((Everyone(), InSegment("a"))), Not(Everyone())))),
}


@pytest.mark.parametrize("dialect", ["postgres", "snowflake", "bigquery", "databricks"])
@pytest.mark.parametrize("kind", sorted(EVERY_KIND))
def test_every_condition_kind_transpiles(kind: str, dialect: str) -> None:
    sql = compile_condition(EVERY_KIND[kind], warehouse_relations(AS_OF), topics=TOPICS)
    sqlglot.transpile(sql, read="duckdb", write=dialect, unsupported_level=ErrorLevel.RAISE)


def test_every_condition_kind_runs_on_duckdb(wh: Warehouse) -> None:
    wh.user("u1", plan="pro", n=7, t="2026-01-10T00:00:00Z", tags=["vip"])
    wh.segment("vip", "u1")
    wh.segment("a")
    for kind, condition in EVERY_KIND.items():
        assert isinstance(wh.members(condition), set), kind
