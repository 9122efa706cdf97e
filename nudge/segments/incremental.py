"""Which YAML segments an incremental build may recompute for the changed users only.

A segment whose membership follows from each user's own data alone (traits, events, other such
segments) changes only for users whose data changed; the dbt build then recomputes just those
(``int_changed_users``). Membership that moves with time itself (``within`` windows, relative
timestamp operators), with the delivery ledger (``message``), or with a hand-written SQL or
uploaded segment it refers to, is recomputed in full on every build.
"""

from __future__ import annotations

from collections.abc import Mapping

from nudge.dsl.models import (
    Attribute,
    Condition,
    InSegment,
    MessageCondition,
    Performed,
    Segment,
)
from nudge.dsl.walk import iter_conditions

TIME_RELATIVE_OPERATORS = frozenset({"newer_than", "older_than", "within_next"})


def follows_user_data_only(
    segment: Segment, segments: Mapping[str, Segment], _seen: frozenset[str] = frozenset()
) -> bool:
    """True when ``segment``'s members at any as_of depend only on each member's own data."""
    if segment.condition is None or segment.name in _seen:
        return False
    seen = _seen | {segment.name}
    return all(_follows_user_data(c, segments, seen) for c in iter_conditions(segment.condition))


def _follows_user_data(
    condition: Condition, segments: Mapping[str, Segment], seen: frozenset[str]
) -> bool:
    if isinstance(condition, MessageCondition):
        return False
    if isinstance(condition, Attribute):
        return condition.comparison.op not in TIME_RELATIVE_OPERATORS
    if isinstance(condition, Performed):
        return condition.within is None and all(
            item.comparison.op not in TIME_RELATIVE_OPERATORS for item in condition.where
        )
    if isinstance(condition, InSegment):
        other = segments.get(condition.segment)
        return other is not None and follows_user_data_only(other, segments, seen)
    return True
