"""The opt-out rule (nudge.core.opt_out): whatever a user's preference state, no non-transactional
message reaches them on a channel they opted out of, in Python and in every SQL that applies the
rule (the send policy, the delivery check, subscription conditions, dim_users.unsubscribed).

Users are drawn from an intent (globally out or not; each topic on, off or left to its default,
either topic-wide or channel by channel) written in any accepted spelling, or in a value that
reads as neither; the expected decision for every (topic, channel) follows from the intent alone,
so a spelling or a shape the rule misreads fails the test. The global flag blocks email, sms and
push only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from functools import cache
from typing import Any

import duckdb
import jinja2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nudge.core.dsl.spec import CHANNELS, Content, Subscription, Topic
from nudge.core.opt_out import (
    GLOBAL_CHANNELS,
    NO_SPELLINGS,
    YES_SPELLINGS,
    opted_out,
    trait_is_yes_macro,
)
from nudge.core.segments.compiler import Relations, compile_condition
from orchestration.defs.delivery.checks import sends_to_opted_out
from senders.policy import evaluate_policies

T0 = datetime(2026, 3, 1, 12, 0)
TOPICS = (Topic("news", default_subscribed=True), Topic("offers", default_subscribed=False))
DEFAULTS: dict[str | None, bool | None] = {"news": True, "offers": False, "undeclared": None}
RELATIONS = Relations(
    users="marts.dim_users",
    events="events",
    ledger="nudge.delivery_ledger",
    segment=lambda name: name,
    as_of=f"cast('{T0.isoformat(sep=' ')}' as timestamp)",
)
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
GLOBAL = "global"  # the key of the global opt-out in a user's expected decisions


def _any_case(word: str) -> st.SearchStrategy[str]:
    return st.tuples(*(st.sampled_from((c.lower(), c.upper())) for c in word)).map("".join)


def _spelled(yes: bool) -> st.SearchStrategy[Any]:
    """A value that reads as yes (or no) in every accepted spelling."""
    words = YES_SPELLINGS if yes else NO_SPELLINGS
    number = 1 if yes else 0
    return st.one_of(
        st.just(yes),
        st.sampled_from((number, float(number))),
        st.sampled_from(words).flatmap(_any_case),
    )


_TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=6)
_NEITHER = st.one_of(
    st.none(),
    _TEXT.filter(lambda t: t.lower() not in YES_SPELLINGS + NO_SPELLINGS),
    st.integers(-(10**12), 10**12).filter(lambda n: n not in (0, 1)),
    st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False).filter(lambda f: f not in (0, 1)),
    st.sampled_from((" true", "yes ", "on", "off", "2", "1.0")),
    st.lists(st.integers(0, 1), max_size=2),
    st.just({}),
)
_MISSING = object()


@st.composite
def _choice(draw: st.DrawFn) -> tuple[str, Any]:
    """(intent: on, off or default, a value written for it; _MISSING: leave the key out)."""
    intent = draw(st.sampled_from(("on", "off", "default")))
    value = draw(
        _spelled(True) if intent == "on" else _spelled(False) if intent == "off" else
        st.one_of(st.just(_MISSING), _NEITHER)
    )  # fmt: skip
    return intent, value


@st.composite
def _user(draw: st.DrawFn) -> tuple[dict[str, Any], dict[Any, bool]]:
    """(traits, opted out of: (topic, channel) -> bool, topic None meaning a message without a
    topic; GLOBAL -> the global flag reads as yes)."""
    traits: dict[str, Any] = {}
    globally_out = draw(st.booleans())
    unsubscribed = draw(_spelled(True) if globally_out else st.one_of(_spelled(False), _NEITHER))
    if unsubscribed is not None or globally_out:
        traits["unsubscribed"] = unsubscribed
    out: dict[Any, bool] = {GLOBAL: globally_out}
    topics: dict[str, Any] = {}
    intents: dict[tuple[str, str], str] = {}
    for topic in DEFAULTS:
        if draw(st.booleans()):  # per channel: a mapping, which reads as neither topic-wide
            mapping: dict[str, Any] = {}
            for channel in CHANNELS:
                intents[topic, channel], value = draw(_choice())
                if value is not _MISSING:
                    mapping[channel] = value
            topics[topic] = mapping
        else:
            intent, value = draw(_choice())
            if value is not _MISSING:
                topics[topic] = value
            intents.update({(topic, channel): intent for channel in CHANNELS})
    shape = draw(st.sampled_from(("topics", "no preferences", "not an object")))
    if shape == "topics":
        traits["cio_subscription_preferences"] = {"topics": topics}
    else:  # no readable preference: each topic follows its default
        intents = dict.fromkeys(intents, "default")
        if shape == "not an object":
            traits["cio_subscription_preferences"] = draw(st.sampled_from(("yes", 1, [True])))
    for channel in CHANNELS:
        blocked = globally_out and channel in GLOBAL_CHANNELS
        out[None, channel] = blocked
        for topic, default in DEFAULTS.items():
            intent = intents[topic, channel]
            topic_off = intent == "off" or (intent == "default" and default is False)
            out[topic, channel] = blocked or topic_off
    return traits, out


_USERS = st.lists(_user(), min_size=1, max_size=6)


@pytest.fixture
def con(sender_warehouse: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    yield sender_warehouse


def _load(con: duckdb.DuckDBPyConnection, users: list[tuple[dict[str, Any], Any]]) -> list[tuple]:
    """Users and one outbox row per (user, topic, channel, transactional); the rows as
    (key, user_id, topic, transactional, expected opted out)."""
    for table in ("marts.dim_users", "nudge.outbox", "nudge.delivery_ledger"):
        con.execute(f"delete from {table}")
    messages, rows = [], []
    for number, (traits, out) in enumerate(users):
        user_id = f"u{number}"
        con.execute(
            "insert into marts.dim_users values (?, ?, ?, '+15550000', null, null)",
            [user_id, json.dumps(traits), f"{user_id}@example.com"],
        )
        for topic in (None, *DEFAULTS):
            for channel in CHANNELS:
                for transactional in (False, True):
                    key = f"{user_id}-{topic}-{channel}-{transactional}"
                    rows.append(
                        [key, f"d-{key}", T0, f"e-{key}", key, user_id, channel, topic,
                         transactional, T0]
                    )  # fmt: skip
                    messages.append((key, user_id, topic, transactional, out[topic, channel]))
    # One statement for every row: DuckDB's executemany runs one insert per row, which made
    # loading most of each example's time.
    values = ", ".join(["(?, ?, 'r0', ?, ?, 'j', ?, ?, ?, 't', ?, ?, false, ?)"] * len(rows))
    con.execute(
        f"""insert into nudge.outbox (idempotency_key, delivery_id, run_id, as_of, entry_id,
               journey, step, user_id, channel, template, topic, transactional, holdout, created_at)
            values {values}""",
        [value for row in rows for value in row],
    )
    return messages


@SETTINGS
@given(users=_USERS)
def test_python_rule_follows_the_intent(users: list[tuple[dict[str, Any], Any]]) -> None:
    for traits, out in users:
        for (topic, channel), expected in ((k, v) for k, v in out.items() if k != GLOBAL):
            default = DEFAULTS[topic] if topic else None
            assert opted_out(traits, topic, channel, default) is expected, (traits, topic, channel)


@SETTINGS
@given(users=_USERS)
def test_the_send_policy_skips_exactly_the_opted_out(
    con: duckdb.DuckDBPyConnection, users: list[tuple[dict[str, Any], Any]]
) -> None:
    messages = _load(con, users)
    decided = evaluate_policies(con, as_of=T0, content=Content(topics=TOPICS))
    opt_out_reasons = {"unsubscribed"} | {
        f"topic unsubscribed: {t} on {c}" for t in DEFAULTS if t for c in CHANNELS
    }
    skipped = {
        row["idempotency_key"]
        for row in decided.iter_rows(named=True)
        if row["status"] == "skipped" and row["reason"] in opt_out_reasons
    }
    sendable = {row["idempotency_key"] for row in decided.iter_rows(named=True)}
    expected = {key for key, _, _, transactional, out in messages if out and not transactional}
    assert skipped == expected
    assert sendable == {key for key, *_ in messages}


@SETTINGS
@given(users=_USERS)
def test_the_delivery_check_flags_exactly_the_sends_to_opted_out(
    con: duckdb.DuckDBPyConnection, users: list[tuple[dict[str, Any], Any]]
) -> None:
    messages = _load(con, users)
    con.execute(
        """insert into nudge.delivery_ledger (idempotency_key, delivery_id, run_id, as_of, user_id,
               journey, step, channel, template, topic, status)
           select idempotency_key, delivery_id, 'r1', as_of, user_id, journey, step, channel,
                  template, topic, 'sent'
           from nudge.outbox"""
    )
    flagged = sends_to_opted_out(con, Content(topics=TOPICS), "r1")
    expected = sorted(
        (user_id, "j", key) for key, user_id, _, transactional, out in messages
        if out and not transactional
    )  # fmt: skip
    assert sorted((user_id, journey, step) for user_id, journey, step, _ in flagged) == expected


@cache
def _subscription_sql(topic: str, subscribed: bool, channel: str | None) -> str:
    """The compiled SQL of a subscription condition, which depends on no example: compiled once
    per process instead of once per example (most of the test's time)."""
    return compile_condition(Subscription(topic, subscribed, channel), RELATIONS, topics=TOPICS)


@SETTINGS
@given(users=_USERS)
def test_subscription_conditions_and_dim_users_read_the_same_rule(
    con: duckdb.DuckDBPyConnection, users: list[tuple[dict[str, Any], Any]]
) -> None:
    _load(con, users)
    for topic in ("news", "offers"):
        for channel in (None, *CHANNELS):  # no channel: subscribed on every channel
            on = (channel,) if channel else CHANNELS
            sql = _subscription_sql(topic, True, channel)
            members = {user_id for (user_id,) in con.execute(sql).fetchall()}
            expected = {
                f"u{n}" for n, (_, out) in enumerate(users) if not any(out[topic, c] for c in on)
            }
            assert members == expected, (topic, channel)
            sql = _subscription_sql(topic, False, channel)
            others = {user_id for (user_id,) in con.execute(sql).fetchall()}
            assert others == {f"u{n}" for n in range(len(users))} - expected, (topic, channel)
    unsubscribed = jinja2.Environment().from_string(
        trait_is_yes_macro() + "{{ duckdb__trait_is_yes(\"traits -> '$.unsubscribed'\") }}"
    )
    rows = con.execute(
        f"select user_id, {unsubscribed.render().strip()} from marts.dim_users"
    ).fetchall()
    assert dict(rows) == {f"u{n}": out[GLOBAL] for n, (_, out) in enumerate(users)}
