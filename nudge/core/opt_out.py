"""The opt-out rule, in one place: who must not get a non-transactional message on a channel.

A user has opted out of a message that is not transactional, sent on ``channel``, when either

- the channel is one of ``GLOBAL_CHANNELS`` (email, sms, push) and their ``unsubscribed`` trait
  reads as yes (global: every topic on those channels; in_app, webhook and slack messages are not
  blocked by it), or
- the message has a topic and their preference for it on that channel reads as no, or reads as
  neither and the topic's default is ``unsubscribed``.

The preference for a topic on a channel is read from ``cio_subscription_preferences.topics``
(Customer.io's form, extended): the per-channel value ``topics.<topic>.<channel>`` when it reads as
yes or no, else the topic-wide value ``topics.<topic>`` (which covers every channel). So
``{topics: {news: false}}`` opts out of news everywhere and
``{topics: {news: {email: true, sms: false}}}`` only of news by sms; a channel a per-channel
mapping leaves out reads as neither (the topic's default applies).

A transactional message ignores all of it. A trait reads as yes or no by ``read_flag``: the JSON
booleans, the numbers 1 and 0, and the strings in ``YES_SPELLINGS`` / ``NO_SPELLINGS`` in any
letter case (no surrounding spaces); anything else (an object too), or a missing trait, reads as
neither.

The rule is written once as Python (``read_flag``, ``opted_out``) and once as a SQL predicate
built with sqlglot on the segment compiler's JSON primitives (``flag_sql``, ``topic_on_sql``), so
it renders in every warehouse dialect. Users of the SQL: the segment compiler (``subscription``
conditions), the send policy (``senders.policy``), the delivery check
(``orchestration.defs.delivery.checks``) and ``marts.dim_users.unsubscribed`` (through the
generated ``trait_is_yes`` dbt macro). A property-based test checks the Python and SQL sides agree
and that no preference state lets a non-transactional message through on any channel.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlglot import exp

from nudge.core.segments.comparisons import JsonValue
from nudge.core.segments.dialects import DIALECTS, dispatch_aliases, json_dialect

UNSUBSCRIBED_TRAIT = "unsubscribed"
TOPIC_PREFERENCES = ("cio_subscription_preferences", "topics")
YES_SPELLINGS = ("true", "t", "yes", "y", "1")
NO_SPELLINGS = ("false", "f", "no", "n", "0")
# The channels the global ``unsubscribed`` trait blocks: the ones that reach a person's own
# address. in_app shows inside the product, webhook and slack go to systems.
GLOBAL_CHANNELS = ("email", "sms", "push")


def read_flag(value: Any) -> bool | None:
    """A trait value read as yes (True), no (False) or neither (None)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return True if value == 1 else False if value == 0 else None
    if isinstance(value, str):
        text = value.lower()
        return True if text in YES_SPELLINGS else False if text in NO_SPELLINGS else None
    return None


def topic_preference(traits: Mapping[str, Any], topic: str, channel: str | None = None) -> Any:
    """The raw preference trait for ``topic`` (on ``channel``: its per-channel value), None when
    missing."""
    preferences: Any = traits
    for key in (*TOPIC_PREFERENCES, topic, *([channel] if channel else [])):
        preferences = preferences.get(key) if isinstance(preferences, Mapping) else None
    return preferences


def unsubscribed(traits: Mapping[str, Any]) -> bool:
    """The global opt-out trait reads as yes (it blocks the ``GLOBAL_CHANNELS``)."""
    return read_flag(traits.get(UNSUBSCRIBED_TRAIT)) is True


def topic_choice(traits: Mapping[str, Any], topic: str, channel: str) -> bool | None:
    """The person's own choice for ``topic`` on ``channel``: the per-channel value when it reads
    as yes or no, else the topic-wide one; None when neither says (the default applies)."""
    choice = read_flag(topic_preference(traits, topic, channel))
    return read_flag(topic_preference(traits, topic)) if choice is None else choice


def topic_off(
    traits: Mapping[str, Any], topic: str, channel: str, default_subscribed: bool | None
) -> bool:
    """The preference for ``topic`` on ``channel`` is no, or neither and the default (None:
    subscribed) is no."""
    choice = topic_choice(traits, topic, channel)
    return default_subscribed is False if choice is None else not choice


def opted_out(
    traits: Mapping[str, Any],
    topic: str | None,
    channel: str,
    default_subscribed: bool | None = True,
) -> bool:
    """Whether a non-transactional message on ``channel`` (of ``topic``, if any) must not reach
    this user."""
    return (channel in GLOBAL_CHANNELS and unsubscribed(traits)) or (
        topic is not None and topic_off(traits, topic, channel, default_subscribed)
    )


def flag_sql(value: JsonValue, wanted: bool) -> exp.Expression:
    """SQL predicate, never NULL: the JSON ``value`` reads as ``wanted`` (``read_flag``).

    The text of a JSON boolean is ``true`` or ``false`` and that of an array or object starts with
    a bracket, so comparing the lower-cased text with the spellings needs no type test: only a
    boolean, a string or a whole number 1 or 0 can match (the last as ``"1"``/``"0"``, which
    reads the same), and the number test catches other spellings of 1 and 0 (``1.0``)."""
    spellings = YES_SPELLINGS if wanted else NO_SPELLINGS
    spelled = exp.In(
        this=exp.Lower(this=value.text()),
        expressions=[exp.Literal.string(s) for s in spellings],
    )
    number = exp.EQ(this=value.number(), expression=exp.Literal.number(1 if wanted else 0))
    return exp.Coalesce(this=exp.paren(exp.or_(spelled, number)), expressions=[exp.false()])


def topic_on_sql(
    preference: JsonValue, channel_preference: JsonValue, default_subscribed: exp.Expression
) -> exp.Expression:
    """SQL predicate, never NULL: the topic is on for one channel (``topic_choice``): its
    ``channel_preference`` reads as yes, or as neither and the topic-wide ``preference`` reads as
    yes, or both read as neither and ``default_subscribed`` (a boolean expression, NULL meaning
    subscribed) holds. The text of an object starts with a bracket, so a per-channel mapping in
    the topic-wide place reads as neither without a type test."""
    default = exp.Coalesce(this=default_subscribed, expressions=[exp.true()])
    topic_wide = exp.or_(
        flag_sql(preference, True),
        exp.paren(exp.and_(exp.not_(flag_sql(preference, False)), default)),
    )
    neither = exp.and_(exp.not_(flag_sql(channel_preference, False)), exp.paren(topic_wide))
    return exp.or_(flag_sql(channel_preference, True), exp.paren(neither))


def flag_sql_text(value: str, wanted: bool, dialect: str = "duckdb") -> str:
    """``flag_sql`` for the JSON value ``value`` (SQL text), rendered in ``dialect``."""
    return _rendered(lambda text: flag_sql(_json(text(value), dialect), wanted), dialect)


def opt_out_values_sql(traits: str) -> str:
    """DuckDB select-list items: the two values the rule reads in the JSON ``traits`` (SQL text),
    extracted once per user (``opt_out_unsubscribed``, ``opt_out_topics``) for
    ``unsubscribed_sql`` and ``topic_off_sql``; extracting them in every branch of the predicate
    made the send policy three times slower."""
    topics = "$." + ".".join(TOPIC_PREFERENCES)
    return (
        f"json_extract({traits}, '$.{UNSUBSCRIBED_TRAIT}') as opt_out_unsubscribed, "
        f"json_extract({traits}, '{topics}') as opt_out_topics"
    )


def unsubscribed_sql(user: str, channel: str) -> str:
    """DuckDB SQL, never NULL: ``channel`` (SQL text) is one the global opt-out blocks and the row
    ``user`` (an alias carrying ``opt_out_values_sql``) holds it."""
    return _rendered(
        lambda text: exp.and_(
            exp.In(
                this=text(channel),
                expressions=[exp.Literal.string(c) for c in GLOBAL_CHANNELS],
            ),
            flag_sql(_json(text(f"{user}.opt_out_unsubscribed"), "duckdb"), True),
        ),
        "duckdb",
    )


def topic_off_sql(user: str, topic: str, channel: str, default_subscribed: str) -> str:
    """DuckDB SQL, never NULL: ``topic`` (SQL text, may be NULL: no topic, never off) is off on
    ``channel`` (SQL text) for the row ``user`` (an alias carrying ``opt_out_values_sql``);
    ``default_subscribed`` is the topic's default (NULL: subscribed)."""
    preference = f"json_extract({user}.opt_out_topics, '$.' || {topic})"
    per_channel = f"json_extract({user}.opt_out_topics, '$.' || {topic} || '.' || {channel})"
    on = _rendered(
        lambda text: topic_on_sql(
            _json(text(preference), "duckdb"),
            _json(text(per_channel), "duckdb"),
            text(default_subscribed),
        ),
        "duckdb",
    )
    return f"({topic} is not null and not ({on}))"


def _json(document: exp.Expression, dialect: str) -> JsonValue:
    return JsonValue(document, (), "trait", json_dialect(dialect))


def _rendered(build: Callable[[Callable[[str], exp.Column]], exp.Expression], dialect: str) -> str:
    """``build`` an expression on placeholder columns standing for SQL texts, render it, and put
    the texts in (sqlglot never parses them, so they may be any SQL or Jinja)."""
    texts: dict[str, str] = {}

    def placeholder(text: str) -> exp.Column:
        name = f"nudge_opt_out_{len(texts)}_text"
        texts[name] = text
        return exp.column(name)

    sql = build(placeholder).sql(dialect)
    for name, text in texts.items():
        sql = sql.replace(name, text)
    return sql


def trait_is_yes_macro() -> str:
    """The ``trait_is_yes(value)`` dbt macro file: ``flag_sql`` for yes, one implementation per
    dialect, dispatched on the target's adapter. ``dim_users.unsubscribed`` is built with it."""
    lines = [
        "{#- Generated by nudge.core.opt_out.trait_is_yes_macro from nudge.core.opt_out.flag_sql",
        "    (the opt-out rule's reading of a JSON value as yes), for each dialect. Do not edit: the",
        "    generator is the source (tests/test_dbt_project.py checks this copy is current). -#}",
        "{% macro trait_is_yes(value) -%}",
        "    {{- return(adapter.dispatch('trait_is_yes')(value)) -}}",
        "{%- endmacro %}",
    ]
    for dialect in DIALECTS:
        lines += [
            f"{{% macro {dialect}__trait_is_yes(value) -%}}",
            flag_sql_text("{{ value }}", True, dialect),
            "{%- endmacro %}",
        ]
    return "\n".join([*lines, *dispatch_aliases("trait_is_yes"), ""])
