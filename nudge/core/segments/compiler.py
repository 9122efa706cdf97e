"""Segment conditions compiled to one SQL query: the distinct user ids for whom a condition holds.

The query reads the relations of the warehouse contract (docs/architecture.md)::

    SELECT DISTINCT u.user_id FROM <users> AS u WHERE <predicate>

Every condition becomes a predicate on the user row ``u`` that is TRUE or FALSE, never NULL, so
``not``, ``all`` and ``any`` are plain NOT / AND / OR. ``performed`` and ``message`` count in a
correlated subquery (so ``times: {eq: 0}`` includes users with no rows at all), ``in_segment`` is an
EXISTS on the segment's relation. Attribute comparisons follow ``nudge.core.segments.comparisons``.

Semantics chosen to match what Customer.io users expect (stated for users in docs/authoring.md):

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
- ``subscription``: the opt-out rule of ``nudge.core.opt_out`` (the one the senders apply): with a
  ``channel``, a user is subscribed to a topic on it when the global flag does not block the
  channel and their preference for the topic on that channel reads as yes, or as neither and the
  topic's default is ``subscribed``. Without one, subscribed on every channel (the topic's declared
  ``channels``, else all): not opted out of the topic anywhere, nor globally, so that a globally unsubscribed user counts as unsubscribed
  from every topic, as in Customer.io where the global flag overrides topics. ``subscribed:
  false`` is the exact complement.
- ``random_bucket``: see ``nudge.core.segments.bucket`` (member when bucket < percent).

Relations are given as SQL text (a table name or Jinja such as ``{{ ref('dim_users') }}``, which
does not parse as SQL): the query is built with sqlglot around unique placeholder identifiers, and
the texts are put in after rendering. User-provided values only ever reach SQL as sqlglot literals;
names read inside JSON (trait names, property paths, topics) must match
``nudge.core.segments.comparisons.NAME_PATTERN``. A string literal containing ``{{``, ``{%`` or ``{#`` is
written as a concatenation (``'a{' || '{b'``) so that dbt's Jinja never sees a delimiter in a value.

``compile_time_changes`` gives, for an incremental build, the users for whom a condition may have
changed with time alone between two as_ofs (``nudge.core.segments.incremental``).

Inside a journey a condition is evaluated per entry (``docs/journeys-keyed.md``):
``compile_entry_condition`` reads a users relation with one row per entry, the user's columns
plus ``entry_id``, ``entry_trigger_at`` (the triggering event's timestamp, the entry start for
other triggers), ``entry_started_at``, ``entry_step_reached_at`` and ``entry_trigger_properties``
(the triggering event's properties, NULL for other triggers), and returns the ``entry_id`` of the
entries it holds for. ``performed ... since`` bounds the counted events by those columns, and a
``where`` operand ``{trigger: path}`` compares with that path in ``entry_trigger_properties``
(``nudge.core.segments.comparisons.compile_value_comparison``): still one correlated count, a join of
events against the entries being evaluated. ``compile_condition`` refuses both (no entry).

``compile_condition(..., dialect=...)`` renders for duckdb (default), postgres, snowflake, bigquery
or databricks; what differs between them is in ``nudge.core.segments.dialects``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import reduce

from sqlglot import exp

from nudge.core.dsl.spec import (
    CHANNELS,
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
from nudge.core.dsl.walk import iter_conditions
from nudge.core.opt_out import (
    GLOBAL_CHANNELS,
    TOPIC_PREFERENCES,
    UNSUBSCRIBED_TRAIT,
    flag_sql,
    topic_on_sql,
)
from nudge.core.segments.bucket import bucket_of, bucket_sql
from nudge.core.segments.comparisons import (
    TIME_RELATIVE_OPERATORS,
    ConditionError,
    JsonValue,
    check_name,
    compile_comparison,
    compile_value_comparison,
    flip_offsets,
    minus,
    plus,
    timestamp_literal,
)
from nudge.core.segments.dialects import json_dialect
from nudge.core.segments.incremental import moves_with_time

__all__ = [
    "ConditionError",
    "Relations",
    "bucket_of",
    "compile_condition",
    "compile_counted_events",
    "compile_entry_condition",
    "compile_json_timestamp",
    "compile_time_changes",
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
    # One row per (user_id, trait) with the trait's JSON `value`, the same values as users.traits,
    # and `value_timestamp`, the value read as a timestamp (compile_json_timestamp): where
    # compile_time_changes finds a trait's time boundaries without parsing every user's value.
    trait_values: str | None = None


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


def compile_entry_condition(
    condition: Condition,
    relations: Relations,
    *,
    topics: Sequence[Topic] = (),
    dialect: str = DIALECT,
) -> str:
    """One query (in ``dialect``) returning the distinct ``entry_id`` of every entry of
    ``relations.users`` (one row per journey entry, see the module docstring) for which
    ``condition`` holds."""
    return _Compiler(relations, topics, dialect, entries=True).query(condition)


def compile_counted_events(
    condition: Performed, relations: Relations, *, dialect: str = DIALECT
) -> str:
    """One query (in ``dialect``): ``entry_id``, ``message_id``, ``timestamp`` and
    ``properties`` of every event that ``condition`` counts for the entries of
    ``relations.users`` (as in ``compile_entry_condition``); what ``nudge explain`` lists."""
    return _Compiler(relations, (), dialect, entries=True).counted_events(condition)


def compile_json_timestamp(value: str, *, dialect: str = DIALECT) -> str:
    """The SQL expression (in ``dialect``) reading the JSON value ``value`` (SQL text) as a naive
    UTC timestamp, NULL when it is none: how conditions compare a trait with a time. The
    workspace's dbt project renders it as the ``trait_timestamp`` macro, so that a stored
    ``value_timestamp`` column holds what the compiled conditions would read."""
    compiler = _Compiler(Relations("", "", "", lambda name: name, "null"), (), dialect)
    parsed = compiler._json(compiler._placeholder(value), (), "value").timestamp()
    return compiler._rendered(parsed)


def compile_time_changes(
    condition: Condition,
    relations: Relations,
    previous_as_of: str,
    *,
    topics: Sequence[Topic] = (),
    dialect: str = DIALECT,
) -> str | None:
    """One query (in ``dialect``) returning the ``user_id`` of every user for whom a condition
    of ``condition`` that moves with time may have changed its result for some as_of between
    ``previous_as_of`` and ``relations.as_of`` (SQL expressions), their data unchanged; None
    when no condition moves with time. ``in_segment`` conditions are not followed.

    A time-relative condition holds for as_of in intervals bounded by instants read from the
    data: an event counts for ``within: W`` while as_of is in ``[timestamp, timestamp + W)``, a
    relative comparison of a timestamp ``t`` holds in ``[t, t + d]`` (``newer_than``) and so on
    (``nudge.core.segments.comparisons.flip_offsets``). The users returned are those with such an
    instant in the band between the two as_ofs (bounds included), which also covers any as_of a
    build that failed in between may have used.
    """
    return _Compiler(relations, topics, dialect).time_changes(condition, previous_as_of)


class _Compiler:
    def __init__(
        self, relations: Relations, topics: Sequence[Topic], dialect: str, entries: bool = False
    ) -> None:
        self.relations = relations
        self.entries = entries  # users rows are journey entries (see compile_entry_condition)
        self.dialect = dialect
        self.json = json_dialect(dialect)
        self.topics = {topic.name: topic for topic in topics}
        # A random tag makes placeholders impossible to guess, so no user value can contain one.
        self.tag = secrets.token_hex(8)
        self.substitutions: dict[str, str] = {}
        self.user = exp.column("user_id", table="u")
        self.key = exp.column("entry_id" if entries else "user_id", table="u")
        self.as_of = self._placeholder(f"({relations.as_of})")

    def query(self, condition: Condition) -> str:
        users = self._relation(self.relations.users, "u")
        select = exp.select(self.key.copy()).distinct().from_(users)
        if not isinstance(condition, Everyone):
            select = select.where(self.predicate(condition))
        return self._rendered(select)

    def counted_events(self, condition: Performed) -> str:
        users = self._relation(self.relations.users, "u")
        events = self._relation(self.relations.events, "e")
        columns = [exp.column("entry_id", table="u")] + [
            exp.column(name, table="e") for name in ("message_id", "timestamp", "properties")
        ]
        filters = exp.and_(*self._performed_filters(condition))
        return self._rendered(exp.select(*columns).from_(users).join(events, on=filters))

    def time_changes(self, condition: Condition, previous_as_of: str) -> str | None:
        previous = self._placeholder(f"({previous_as_of})")
        low = exp.func("least", previous.copy(), self.as_of.copy())
        high = exp.func("greatest", previous.copy(), self.as_of.copy())
        queries = [
            self._time_changes_of(part, low, high)
            for part in iter_conditions(condition)
            if moves_with_time(part)
        ]
        if not queries:
            return None
        return self._rendered(reduce(lambda a, b: exp.union(a, b, distinct=True), queries))

    def _time_changes_of(
        self, condition: Condition, low: exp.Expression, high: exp.Expression
    ) -> exp.Select:
        """The users with a data instant in ``[low, high]`` at which ``condition`` may flip."""

        def in_band(instant: exp.Expression) -> exp.Expression:
            return exp.Between(this=instant, low=low.copy(), high=high.copy())

        if isinstance(condition, Attribute):
            return self._attribute_time_changes(condition, in_band)
        assert isinstance(condition, Performed)
        timestamp = exp.column("timestamp", table="e")
        # An event starts to count at its timestamp, and stops `within` later.
        flips = [in_band(timestamp.copy())]
        if condition.within is not None:
            flips.append(
                exp.Between(
                    this=timestamp.copy(),
                    low=minus(low, condition.within),
                    high=minus(high, condition.within),
                )
            )
        filters: list[exp.Expression] = [
            exp.EQ(
                this=exp.column("event", table="e"), expression=exp.Literal.string(condition.event)
            )
        ]
        for item, properties in self._where(condition):
            if item.comparison.op in TIME_RELATIVE_OPERATORS:
                flips.extend(map(in_band, _instants(properties.timestamp(), item.comparison)))
            else:  # does not move: an event it excludes never counts
                filters.append(compile_comparison(properties, item.comparison, self.as_of))
        events = self._relation(self.relations.events, "e")
        user = exp.column("user_id", table="e")
        return exp.select(user).from_(events).where(exp.and_(*filters, exp.paren(exp.or_(*flips))))

    def _attribute_time_changes(
        self, condition: Attribute, in_band: Callable[[exp.Expression], exp.Expression]
    ) -> exp.Select:
        """Users whose trait ``condition.name`` is a timestamp with a flip instant in band.

        From the trait values' parsed ``value_timestamp`` when the relations have them, else by
        parsing each user's traits document."""
        label = f"attribute {condition.name!r}"
        if self.relations.trait_values is None:
            value = self._json(exp.column("traits", table="u"), (condition.name,), label)
            source = self._relation(self.relations.users, "u")
            parsed = exp.select(exp.column("user_id", table="u"), value.timestamp().as_("t")).from_(
                source
            )
        else:
            source = self._relation(self.relations.trait_values, "t")
            parsed = (
                exp.select(
                    exp.column("user_id", table="t"),
                    exp.column("value_timestamp", table="t").as_("t"),
                )
                .from_(source)
                .where(
                    exp.EQ(
                        this=exp.column("trait", table="t"),
                        expression=exp.Literal.string(check_name(condition.name, label)),
                    )
                )
            )
        flips = _instants(exp.column("t", table="v"), condition.comparison)
        return (
            exp.select(exp.column("user_id", table="v"))
            .from_(parsed.subquery("v"))
            .where(exp.or_(*map(in_band, flips)))
        )

    def _rendered(self, select: exp.Expression) -> str:
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
            case Subscription():
                return self._subscription(condition)
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
        events = self._relation(self.relations.events, "e")
        filters = self._performed_filters(condition)
        return self._count(events, filters, condition.times, f"performed {condition.event!r}")

    def _performed_filters(self, condition: Performed) -> list[exp.Expression]:
        """What an event ``e`` of the user (or entry) ``u`` must satisfy to be counted."""
        event = exp.column("event", table="e")
        timestamp = exp.column("timestamp", table="e")
        filters = [
            self._same_user("e"),
            exp.EQ(this=event, expression=exp.Literal.string(condition.event)),
            *self._window(timestamp, condition.within),
        ]
        label = f"performed {condition.event!r}"
        if condition.entry_scoped and not self.entries:
            raise ConditionError(
                f"{label}: since and {{trigger: ...}} are allowed only in a journey's conditions"
            )
        if condition.since is not None:
            boundary = _SINCE.get(condition.since)
            if boundary is None:
                raise ConditionError(f"{label}: unknown since {condition.since!r}")
            compare, column = boundary
            filters.append(compare(this=timestamp.copy(), expression=exp.column(column, table="u")))
        for item, properties in self._where(condition):
            operand = item.comparison.value
            if isinstance(operand, TriggerRef):
                trigger = self._json(
                    exp.column("entry_trigger_properties", table="u"),
                    operand.path,
                    f"{label} where {'.'.join(item.path)!r}: {operand}",
                )
                filters.append(compile_value_comparison(properties, item.comparison.op, trigger))
            else:
                filters.append(compile_comparison(properties, item.comparison, self.as_of))
        return filters

    def _where(self, condition: Performed) -> list[tuple[PropertyFilter, JsonValue]]:
        """Each ``where`` item of ``condition`` with the event property it compares."""
        return [
            (
                item,
                self._json(
                    exp.column("properties", table="e"),
                    item.path,
                    f"performed {condition.event!r} where {'.'.join(item.path)!r}",
                ),
            )
            for item in condition.where
        ]

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

    def _subscription(self, condition: Subscription) -> exp.Expression:
        topic = condition.topic
        declared = self.topics.get(topic)
        if declared is None:
            known = ", ".join(sorted(self.topics)) or "none are declared"
            raise ConditionError(f"subscription: undeclared topic {topic!r} (declared: {known})")
        traits = exp.column("traits", table="u")
        label = f"subscription {topic!r}"
        preference = self._json(traits, (*TOPIC_PREFERENCES, topic), label)
        unsubscribed = flag_sql(self._json(traits, (UNSUBSCRIBED_TRAIT,), label), True)
        default = exp.true() if declared.default_subscribed else exp.false()
        channels = (condition.channel,) if condition.channel else declared.channels or CHANNELS
        on = exp.and_(
            *(
                topic_on_sql(
                    preference,
                    self._json(traits, (*TOPIC_PREFERENCES, topic, channel), label),
                    default,
                )
                for channel in channels
            )
        )
        if any(channel in GLOBAL_CHANNELS for channel in channels):
            on = exp.and_(exp.not_(unsubscribed), on)
        return on if condition.subscribed else exp.not_(exp.paren(on))

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


# `since` scopes: counted events are strictly after the trigger, at or after the entry start or
# the time the entry reached its current step (columns of the entries relation).
_SINCE: dict[str, tuple[type[exp.Expression], str]] = {
    "trigger": (exp.GT, "entry_trigger_at"),
    "entry": (exp.GTE, "entry_started_at"),
    "step": (exp.GTE, "entry_step_reached_at"),
}


def _instants(timestamp: exp.Expression, comparison: Comparison) -> list[exp.Expression]:
    """The instants at which ``comparison`` of ``timestamp`` can change as as_of moves."""
    return [
        plus(timestamp, offset) if offset else timestamp.copy()
        for offset in flip_offsets(comparison)
    ]


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
