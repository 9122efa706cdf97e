"""Parsing segment conditions (and their comparisons and ``where`` filters) from raw YAML."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nudge.core.dsl.problems import did_you_mean, one_of
from nudge.core.dsl.reader import Reader, describe, sub
from nudge.core.dsl.spec import (
    ATTRIBUTE_OPERATORS,
    CHANNELS,
    MESSAGE_STATUSES,
    SINCE_SCOPES,
    TIMES_OPERATORS,
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
    TriggerRef,
)

CONDITION_KEYS = (
    "all", "any", "not", "everyone", "attribute", "performed", "in_segment", "message",
    "subscription", "random_bucket",
)  # fmt: skip
_KEY_OF: dict[type, str] = {
    All: "all", AnyOf: "any", Not: "not", Everyone: "everyone", Attribute: "attribute",
    Performed: "performed", InSegment: "in_segment", MessageCondition: "message",
    Subscription: "subscription", RandomBucket: "random_bucket",
}  # fmt: skip
_SCALAR = (str, int, float, bool)
# Operators whose operand may be ``{trigger: <dotted path>}`` (a property of the triggering event).
TRIGGER_OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "starts_with")


def condition_key(condition: Condition) -> str:
    """The YAML key a condition is written under (``in_segment`` for ``InSegment``)."""
    return _KEY_OF[type(condition)]


def parse_condition(r: Reader, value: Any, path: str) -> Condition | None:
    """A condition (a mapping with exactly one key), or None after recording what is wrong."""
    kind = r.single_key(value, path, CONDITION_KEYS, "condition")
    if kind is None:
        return None
    key, inner = kind
    at = sub(path, key)
    match key:
        case "all" | "any":
            items = r.list_of(inner, at, "conditions")
            if items is None:
                return None
            if not items:
                r.problem(at, "expected at least one condition; got an empty list")
                return None
            # Best effort (see parse_journey): the parts that parse are kept for the cross checks.
            parsed = [parse_condition(r, item, sub(at, i)) for i, item in enumerate(items)]
            parts = tuple(part for part in parsed if part is not None)
            if not parts:
                return None
            return All(parts) if key == "all" else AnyOf(parts)
        case "not":
            inner_condition = parse_condition(r, inner, at)
            return None if inner_condition is None else Not(inner_condition)
        case "everyone":
            return None if r.true(inner, at) is None else Everyone()
        case "attribute":
            return _attribute(r, inner, at)
        case "performed":
            return _performed(r, inner, at)
        case "in_segment":
            name = r.string(inner, at)
            return None if name is None else InSegment(name)
        case "message":
            return _message(r, inner, at)
        case "subscription":
            return _subscription(r, inner, at)
        case _:
            return _random_bucket(r, inner, at)


def parse_comparison(
    r: Reader, data: Mapping[str, Any], path: str, subject: str
) -> Comparison | None:
    """The one operator in ``data`` besides ``subject`` (``name`` or ``property``)."""
    ops = [key for key in data if key != subject]
    if len(ops) != 1:
        r.problem(
            path,
            f"expected exactly one operator besides '{subject}', {one_of(ATTRIBUTE_OPERATORS)}; "
            f"got {', '.join(map(str, ops)) or 'none'}",
        )
        return None
    op = ops[0]
    if op not in ATTRIBUTE_OPERATORS:
        r.problem(
            path,
            f"unknown operator '{op}'; {one_of(ATTRIBUTE_OPERATORS)}{did_you_mean(op, ATTRIBUTE_OPERATORS)}",
        )
        return None
    if isinstance(data[op], Mapping) and "trigger" in data[op]:
        value = _trigger_ref(r, op, data[op], sub(path, op), subject)
    else:
        value = _operand(r, op, data[op], sub(path, op))
    return None if value is None else Comparison(op, value)


def _trigger_ref(
    r: Reader, op: str, value: Mapping[str, Any], path: str, subject: str
) -> TriggerRef | None:
    """``{trigger: <dotted path>}``: where it may be used is checked across definitions
    (``nudge.core.dsl.checks``: only in a journey with an event trigger)."""
    if subject != "property":
        r.problem(
            path,
            "{trigger: ...} compares an event property with the triggering event's; "
            "it is allowed only in a `performed` where item inside a journey",
        )
        return None
    if op not in TRIGGER_OPERATORS:
        r.problem(
            path,
            f"'{op}' cannot compare with {{trigger: ...}}; use one of {', '.join(TRIGGER_OPERATORS)}",
        )
        return None
    if set(value) != {"trigger"}:
        r.problem(path, f"expected {{trigger: <dotted path>}}; got {describe(value)}")
        return None
    parts = _property_path(r, value["trigger"], sub(path, "trigger"))
    return None if parts is None else TriggerRef(parts)


def _property_path(r: Reader, value: Any, path: str) -> tuple[str, ...] | None:
    """A dotted property path like ``items.0.sku``, split into its parts."""
    prop = r.string(value, path)
    if prop is None:
        return None
    parts = tuple(prop.split("."))
    if not all(parts):
        r.problem(path, f"{prop!r} is not a dotted property path like 'items.0.sku'")
        return None
    if not all(r.key_name(part, path, "property path part") for part in parts):
        return None
    return parts


def _operand(r: Reader, op: str, value: Any, path: str) -> Any:
    """The operand of ``op`` in its typed form, or None (after a problem) when it has the wrong type."""
    match op:
        case "exists":
            return r.boolean(value, path)
        case "newer_than" | "older_than" | "within_next":
            return r.duration(value, path)
        case "before" | "after":
            return r.instant(value, path)
        case "in":
            if not isinstance(value, list) or not all(isinstance(v, _SCALAR) for v in value):
                r.problem(
                    path,
                    f"'in' expects a list of values, e.g. [free, trial]; got {describe(value)}",
                )
                return None
            return list(value)
        case "starts_with":
            return r.string(value, path)
        case "gt" | "gte" | "lt" | "lte":
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                r.problem(
                    path,
                    f"'{op}' compares with a number, a string or a timestamp; got {describe(value)}",
                )
                return None
            return value
        case _:  # eq, ne, contains
            if not isinstance(value, _SCALAR):
                hint = " (use exists: false for a missing trait)" if value is None else ""
                r.problem(
                    path,
                    f"'{op}' expects a single value (string, number or boolean); got {describe(value)}{hint}",
                )
                return None
            return value


def parse_where(r: Reader, value: Any, path: str) -> tuple[PropertyFilter, ...] | None:
    """A ``where`` list: ``{property: "a.b.c", <op>: value}`` items."""
    items = r.list_of(value, path, "property filters {property, <operator>: value}")
    if items is None:
        return None
    filters: list[PropertyFilter | None] = []
    for i, item in enumerate(items):
        at = sub(path, i)
        if not isinstance(item, Mapping) or "property" not in item:
            r.problem(
                at, f"expected {{property: <dotted path>, <operator>: value}}; got {describe(item)}"
            )
            filters.append(None)
            continue
        parts = _property_path(r, item["property"], sub(at, "property"))
        comparison = parse_comparison(r, item, at, "property")
        filters.append(PropertyFilter(parts, comparison) if parts and comparison else None)
    if any(f is None for f in filters):
        return None
    return tuple(f for f in filters if f is not None)


def parse_times(r: Reader, value: Any, path: str) -> Comparison | None:
    kind = r.single_key(value, path, TIMES_OPERATORS, "times operator")
    if kind is None:
        return None
    op, count = kind
    count = r.count(count, sub(path, op))
    return None if count is None else Comparison(op, count)


def _attribute(r: Reader, value: Any, path: str) -> Attribute | None:
    if not isinstance(value, Mapping) or "name" not in value:
        r.problem(path, f"expected {{name, <operator>: value}}; got {describe(value)}")
        return None
    name = r.key_name(value["name"], sub(path, "name"), "trait name")
    comparison = parse_comparison(r, value, path, "name")
    return Attribute(name, comparison) if name and comparison else None


def _performed(r: Reader, value: Any, path: str) -> Performed | None:
    start = r.problem_count
    data = r.mapping(
        value, path, required=("event",), optional=("times", "within", "where", "since")
    )
    if data is None:
        return None
    event = r.string(data["event"], sub(path, "event"))
    times = (
        parse_times(r, data["times"], sub(path, "times"))
        if "times" in data
        else Comparison("gte", 1)
    )
    within = r.duration(data["within"], sub(path, "within")) if "within" in data else None
    where = parse_where(r, data["where"], sub(path, "where")) if "where" in data else ()
    # Where `since` may be used is checked across definitions (only inside a journey).
    since = (
        r.choice(data["since"], sub(path, "since"), SINCE_SCOPES, "since scope")
        if "since" in data
        else None
    )
    if r.problem_count > start or event is None or times is None or where is None:
        return None
    return Performed(event, times, within, where, since)  # type: ignore[arg-type]


def _message(r: Reader, value: Any, path: str) -> MessageCondition | None:
    start = r.problem_count
    data = r.mapping(
        value, path, required=("status",),
        optional=("channel", "journey", "template", "times", "within"),
    )  # fmt: skip
    if data is None:
        return None
    status = r.choice(data["status"], sub(path, "status"), MESSAGE_STATUSES, "message status")
    channel = (
        r.choice(data["channel"], sub(path, "channel"), CHANNELS, "channel")
        if "channel" in data
        else None
    )
    journey = r.string(data["journey"], sub(path, "journey")) if "journey" in data else None
    template = r.string(data["template"], sub(path, "template")) if "template" in data else None
    times = (
        parse_times(r, data["times"], sub(path, "times"))
        if "times" in data
        else Comparison("gte", 1)
    )
    within = r.duration(data["within"], sub(path, "within")) if "within" in data else None
    if r.problem_count > start or status is None or times is None:
        return None
    return MessageCondition(status, channel, journey, template, times, within)


def _subscription(r: Reader, value: Any, path: str) -> Subscription | None:
    start = r.problem_count
    data = r.mapping(value, path, required=("topic", "subscribed"), optional=("channel",))
    if data is None:
        return None
    topic = r.string(data["topic"], sub(path, "topic"))
    subscribed = r.boolean(data["subscribed"], sub(path, "subscribed"))
    channel = (
        r.choice(data["channel"], sub(path, "channel"), CHANNELS, "channel")
        if "channel" in data
        else None
    )
    if r.problem_count > start or topic is None or subscribed is None:
        return None
    return Subscription(topic, subscribed, channel)


def _random_bucket(r: Reader, value: Any, path: str) -> RandomBucket | None:
    data = r.mapping(value, path, required=("percent",), optional=("salt",))
    if data is None:
        return None
    percent = r.number(data["percent"], sub(path, "percent"), low=0, high=100)
    salt = data.get("salt", "")
    if not isinstance(salt, str | int) or isinstance(salt, bool):
        r.problem(sub(path, "salt"), f"expected a string; got {describe(salt)}")
        return None
    return None if percent is None else RandomBucket(percent, str(salt))
