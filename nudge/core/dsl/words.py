"""Definitions in words, for people reading ``nudge explain``: the YAML's meaning without its
punctuation and never a Python repr."""

from __future__ import annotations

import json
from typing import Any

from nudge.core.dsl.durations import format_duration
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
    TriggerRef,
)

_OPERATORS = {
    "eq": "is", "ne": "is not", "gt": "is more than", "gte": "is at least", "lt": "is less than",
    "lte": "is at most", "in": "is one of", "contains": "contains", "starts_with": "starts with",
    "newer_than": "is within the last", "older_than": "is longer ago than",
    "within_next": "is within the next", "before": "is before", "after": "is after",
}  # fmt: skip
_SINCE = {"trigger": "since the trigger", "entry": "since the entry", "step": "since the step"}


def value_words(value: Any) -> str:
    """An operand as written: JSON for data, duration text for durations, ISO for instants."""
    if isinstance(value, TriggerRef):
        return str(value)
    if hasattr(value, "total_seconds"):
        return format_duration(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return json.dumps(value)


def comparison_words(subject: str, comparison: Comparison) -> str:
    """``plan is "free"``, ``email is set``, ``signed_up_at is within the last 7d``."""
    if comparison.op == "exists":
        return f"{subject} {'is set' if comparison.value else 'is not set'}"
    return f"{subject} {_OPERATORS[comparison.op]} {value_words(comparison.value)}"


def times_words(times: Comparison) -> str:
    """``at least once``, ``exactly 3 times``."""
    count = times.value
    amount = "once" if count == 1 else f"{count} times"
    prefix = {"eq": "exactly", "gte": "at least", "gt": "more than", "lte": "at most",
              "lt": "fewer than"}[times.op]  # fmt: skip
    return f"{prefix} {amount}"


def where_words(where: tuple[PropertyFilter, ...]) -> str:
    """`` where cart_id is {trigger: cart_id} and total is more than 50`` (empty without items)."""
    if not where:
        return ""
    return " where " + " and ".join(
        comparison_words(".".join(item.path), item.comparison) for item in where
    )


def condition_words(condition: Condition) -> str:
    """The condition as a sentence fragment, nested parts in parentheses."""
    match condition:
        case All(parts):
            return "all of (" + "; ".join(condition_words(p) for p in parts) + ")"
        case AnyOf(parts):
            return "any of (" + "; ".join(condition_words(p) for p in parts) + ")"
        case Not(inner):
            return f"not ({condition_words(inner)})"
        case Everyone():
            return "everyone"
        case Attribute(name, comparison):
            return "trait " + comparison_words(name, comparison)
        case Performed():
            text = f"performed {condition.event} {times_words(condition.times)}"
            if condition.within is not None:
                text += f" within {format_duration(condition.within)}"
            if condition.since is not None:
                text += f" {_SINCE[condition.since]}"
            return text + where_words(condition.where)
        case InSegment(segment):
            return f"in segment {segment}"
        case MessageCondition():
            return _message_words(condition)
        case Subscription(topic, subscribed, channel):
            where = f" on {channel}" if channel else ""
            return f"{'subscribed' if subscribed else 'not subscribed'} to topic {topic}{where}"
        case RandomBucket(percent, salt):
            salted = f" (salt {json.dumps(salt)})" if salt else ""
            return f"in a random {percent:g}% of users{salted}"
    raise TypeError(f"no words for condition {type(condition).__name__}")


def _message_words(condition: MessageCondition) -> str:
    kind = "message" if condition.channel is None else f"{condition.channel} message"
    text = f"got a {kind} that was {condition.status}"
    if condition.template is not None:
        text += f" from template {condition.template}"
    if condition.journey is not None:
        text += f" in journey {condition.journey}"
    text += f", {times_words(condition.times)}"
    if condition.within is not None:
        text += f" within {format_duration(condition.within)}"
    return text
