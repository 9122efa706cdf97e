"""Segment conditions compiled to one SQL query: the distinct user ids for whom a condition holds.

The query reads the relations of the warehouse contract (docs/architecture.md)::

    SELECT DISTINCT u.user_id FROM <users> AS u WHERE <predicate>

Every condition becomes a predicate on the user row ``u`` that is TRUE or FALSE, never NULL, so
``not``, ``all`` and ``any`` are plain NOT / AND / OR. ``performed`` and ``message`` count in a
correlated subquery (so ``times: {eq: 0}`` includes users with no rows at all), ``in_segment`` is an
EXISTS on the segment's relation. Attribute comparisons follow ``nudge.segments.comparisons``.

Semantics where dsl.md leaves room, chosen to match what Customer.io users expect:

- ``attribute.name`` is one top-level trait key (dots are part of the name); ``where`` properties are
  dotted paths into nested objects, an all-digit part indexing an array (``items.0.sku``).
- ``performed`` matches the ``event`` column exactly and counts events in ``(as_of - within, as_of]``
  (all history up to as_of without ``within``).
- ``message`` reads the delivery ledger. A message counts at the ledger's ``as_of`` (the instant of
  the run that handled it, not the wall clock), within ``(as_of - within, as_of]``, so scenarios and
  replays see the same history. A ledger row holds a message's latest status, so a status
  implies the earlier ones of the delivery funnel: ``sent`` matches sent, delivered, opened, clicked,
  converted, bounced, unsubscribed and spammed messages; ``delivered`` all of those but bounced;
  ``opened`` opened and clicked (a click implies an open); the other statuses match only
  themselves.
- ``subscription``: a user is subscribed to a topic when they are not globally unsubscribed (trait
  ``unsubscribed`` is boolean true) and their preference (boolean trait
  ``cio_subscription_preferences.topics.<topic>``) is true, or absent and the topic's default is
  ``subscribed``. ``subscribed: false`` is the exact complement, so a globally unsubscribed user
  counts as unsubscribed from every topic, as in Customer.io where the global flag overrides topics.
- ``random_bucket``: see ``nudge.segments.bucket`` (member when bucket < percent).

Relations are given as SQL text (a table name or Jinja such as ``{{ ref('dim_users') }}``, which
does not parse as SQL): the query is built with sqlglot around unique placeholder identifiers, and
the texts are put in after rendering. User-provided values only ever reach SQL as sqlglot literals;
names read inside JSON (trait names, property paths, topics) must match
``nudge.segments.comparisons.NAME_PATTERN``. A string literal containing ``{{``, ``{%`` or ``{#`` is
written as a concatenation (``'a{' || '{b'``) so that dbt's Jinja never sees a delimiter in a value.

``compile_condition(..., dialect=...)`` renders for duckdb (default), postgres, snowflake, bigquery
or databricks; what differs between them is in ``nudge.segments.dialects``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlglot import exp

from nudge.dsl.models import (
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
    RandomBucket,
    Subscription,
    Topic,
)
from nudge.segments.bucket import bucket_of, bucket_sql
from nudge.segments.comparisons import (
    ConditionError,
    JsonValue,
    compile_comparison,
    minus,
    timestamp_literal,
)
from nudge.segments.dialects import json_dialect

__all__ = [
    "ConditionError",
    "Relations",
    "bucket_of",
    "compile_condition",
    "status_matches",
    "warehouse_relations",
]

DIALECT = "duckdb"

_TIMES = {"eq": exp.EQ, "gte": exp.GTE, "gt": exp.GT, "lte": exp.LTE, "lt": exp.LT}
# Ledger statuses that a `message` condition's status matches (see the module docstring).
_STATUS_FUNNEL = {
    "sent": (
        "sent",
        "delivered",
        "opened",
        "clicked",
        "converted",
        "bounced",
        "unsubscribed",
        "spammed",
    ),
    "delivered": ("delivered", "opened", "clicked", "converted", "unsubscribed", "spammed"),
    "opened": ("opened", "clicked"),
}


@dataclass(frozen=True)
class Relations:
    """What a compiled query reads: relation SQL texts and the ``as_of`` SQL expression."""

    users: str  # e.g. "marts.dim_users" or "{{ ref('dim_users') }}"
    events: str
    ledger: str
    segment: Callable[[str], str]  # segment name -> relation SQL text
    as_of: str  # SQL expression of type TIMESTAMP, e.g. "cast('2026-01-01 00:00:03' as timestamp)"


def warehouse_relations(as_of: datetime) -> Relations:
    """The physical tables of the warehouse (what the journey engine queries) at ``as_of``."""
    return Relations(
        users="marts.dim_users",
        events="marts.fct_events",
        ledger="nudge.delivery_ledger",
        segment=lambda name: exp.table_(name, db="segments", quoted=True).sql(DIALECT),
        as_of=timestamp_literal(as_of).sql(DIALECT),
    )


def status_matches(status: str) -> tuple[str, ...]:
    """The ledger statuses that a ``message`` condition with ``status`` counts."""
    return _STATUS_FUNNEL.get(status, (status,))


def compile_condition(
    condition: Condition,
    relations: Relations,
    *,
    topics: Sequence[Topic] = (),
    dialect: str = DIALECT,
) -> str:
    """One query (in ``dialect``) returning the distinct ``user_id`` of every user for whom
    ``condition`` holds.

    ``topics`` gives the defaults for ``subscription`` conditions; a topic not among them is a
    ``ConditionError``, as is any operand of the wrong type or a name outside the allowlist.
    """
    return _Compiler(relations, topics, dialect).query(condition)


class _Compiler:
    def __init__(self, relations: Relations, topics: Sequence[Topic], dialect: str) -> None:
        self.relations = relations
        self.dialect = dialect
        self.json = json_dialect(dialect)
        self.topics = {topic.name: topic for topic in topics}
        # A random tag makes placeholders impossible to guess, so no user value can contain one.
        self.tag = secrets.token_hex(8)
        self.substitutions: dict[str, str] = {}
        self.user = exp.column("user_id", table="u")
        self.as_of = self._placeholder(f"({relations.as_of})")

    def query(self, condition: Condition) -> str:
        users = self._relation(self.relations.users, "u")
        select = exp.select(self.user.copy()).distinct().from_(users)
        if not isinstance(condition, Everyone):
            select = select.where(self.predicate(condition))
        select = select.transform(_jinja_safe_literal)
        sql = select.sql(self.dialect, pretty=True)
        for name, text in self.substitutions.items():
            sql = sql.replace(name, text)
        return sql

    def _placeholder(self, text: str) -> exp.Column:
        name = f"nudge_{len(self.substitutions)}_{self.tag}"
        self.substitutions[name] = text
        return exp.column(name)

    def _relation(self, text: str, alias: str) -> exp.Table:
        return exp.to_table(self._placeholder(text).name).as_(alias)

    # --- conditions ---------------------------------------------------------------------------------

    def predicate(self, condition: Condition) -> exp.Expression:
        match condition:
            case All(conditions):
                return exp.and_(*map(self._grouped, conditions)) if conditions else exp.true()
            case AnyOf(conditions):
                return exp.or_(*map(self._grouped, conditions)) if conditions else exp.false()
            case Not(inner):
                return exp.not_(self._grouped(inner))
            case Everyone():
                return exp.true()
            case Attribute(name, comparison):
                traits = self._json(exp.column("traits", table="u"), (name,), f"attribute {name!r}")
                return compile_comparison(traits, comparison, self.as_of)
            case Performed():
                return self._performed(condition)
            case InSegment(segment):
                return exp.Exists(this=self._members(segment))
            case MessageCondition():
                return self._message(condition)
            case Subscription(topic, subscribed):
                return self._subscription(topic, subscribed)
            case RandomBucket(percent, salt):
                if not 0 <= percent <= 100:
                    raise ConditionError(
                        f"random_bucket: percent must be from 0 to 100; got {percent!r}"
                    )
                return exp.LT(
                    this=bucket_sql(salt, self.user.copy()), expression=exp.Literal.number(percent)
                )
        raise ConditionError(f"not a condition: {condition!r}")

    def _grouped(self, condition: Condition) -> exp.Expression:
        return exp.paren(self.predicate(condition))

    def _members(self, segment: str) -> exp.Select:
        relation = self._relation(self.relations.segment(segment), "s")
        return exp.select(exp.Literal.number(1)).from_(relation).where(self._same_user("s"))

    def _performed(self, condition: Performed) -> exp.Expression:
        event = exp.column("event", table="e")
        filters = [
            self._same_user("e"),
            exp.EQ(this=event, expression=exp.Literal.string(condition.event)),
            *self._window(exp.column("timestamp", table="e"), condition.within),
        ]
        for item in condition.where:
            label = f"performed {condition.event!r} where {'.'.join(item.path)!r}"
            properties = self._json(exp.column("properties", table="e"), item.path, label)
            filters.append(compile_comparison(properties, item.comparison, self.as_of))
        events = self._relation(self.relations.events, "e")
        return self._count(events, filters, condition.times, f"performed {condition.event!r}")

    def _message(self, condition: MessageCondition) -> exp.Expression:
        statuses = status_matches(condition.status)
        filters = [
            self._same_user("m"),
            exp.column("status", table="m").isin(*(exp.Literal.string(s) for s in statuses)),
        ]
        for column in ("channel", "journey", "template"):
            wanted = getattr(condition, column)
            if wanted is not None:
                filters.append(
                    exp.EQ(
                        this=exp.column(column, table="m"), expression=exp.Literal.string(wanted)
                    )
                )
        filters.extend(self._window(exp.column("as_of", table="m"), condition.within))
        ledger = self._relation(self.relations.ledger, "m")
        return self._count(ledger, filters, condition.times, f"message {condition.status!r}")

    def _subscription(self, topic: str, subscribed: bool) -> exp.Expression:
        declared = self.topics.get(topic)
        if declared is None:
            known = ", ".join(sorted(self.topics)) or "none are declared"
            raise ConditionError(f"subscription: undeclared topic {topic!r} (declared: {known})")
        traits = exp.column("traits", table="u")
        preference = self._json(
            traits, ("cio_subscription_preferences", "topics", topic), f"subscription {topic!r}"
        )
        unsubscribed = self._json(traits, ("unsubscribed",), "subscription")
        globally_unsubscribed = compile_comparison(unsubscribed, Comparison("eq", True), self.as_of)
        if declared.default_subscribed:  # subscribed unless the preference says false
            topic_on = exp.not_(compile_comparison(preference, Comparison("eq", False), self.as_of))
        else:  # unsubscribed unless the preference says true
            topic_on = compile_comparison(preference, Comparison("eq", True), self.as_of)
        on = exp.and_(exp.not_(globally_unsubscribed), topic_on)
        return on if subscribed else exp.not_(exp.paren(on))

    # --- helpers ------------------------------------------------------------------------------------

    def _json(self, document: exp.Expression, path: tuple[str, ...], label: str) -> JsonValue:
        return JsonValue(document, path, label, self.json)

    def _same_user(self, alias: str) -> exp.Expression:
        return exp.EQ(this=exp.column("user_id", table=alias), expression=self.user.copy())

    def _window(self, moment: exp.Expression, within: timedelta | None) -> list[exp.Expression]:
        """``moment`` in ``(as_of - within, as_of]``, or at or before ``as_of`` without ``within``."""
        bounds: list[exp.Expression] = [exp.LTE(this=moment.copy(), expression=self.as_of.copy())]
        if within is not None:
            if within <= timedelta(0):
                raise ConditionError(f"within must be a positive duration; got {within}")
            bounds.insert(0, exp.GT(this=moment.copy(), expression=minus(self.as_of, within)))
        return bounds

    def _count(
        self, relation: exp.Table, filters: list[exp.Expression], times: Comparison, label: str
    ) -> exp.Expression:
        compare = _TIMES.get(times.op)
        count = times.value
        if compare is None or not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ConditionError(
                f"{label}: times must be one of {', '.join(_TIMES)} with a count >= 0; got {times.op}: {count!r}"
            )
        counted = exp.select(exp.Count(this=exp.Star())).from_(relation).where(exp.and_(*filters))
        return compare(this=counted.subquery(), expression=exp.Literal.number(count))


_JINJA_OPENERS = ("{{", "{%", "{#")


def _jinja_safe_literal(node: exp.Expression) -> exp.Expression:
    """A string literal holding a Jinja delimiter, as a concatenation that splits every ``{``."""
    if not (isinstance(node, exp.Literal) and node.is_string):
        return node
    text = node.this
    if not any(opener in text for opener in _JINJA_OPENERS):
        return node
    parts = text.split("{")
    pieces = [part + "{" for part in parts[:-1]] + [parts[-1]]
    joined: exp.Expression = exp.Literal.string(pieces[0])
    for piece in pieces[1:]:
        joined = exp.DPipe(this=joined, expression=exp.Literal.string(piece), safe=True)
    return exp.paren(joined)
