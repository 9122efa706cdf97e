"""Which YAML segments an incremental build may recompute for some users only, and for whom.

A segment whose members follow from each user's own data (traits, events, other such segments)
changes only for users whose data changed (``int_changed_users``) and, when a condition moves
with time (a ``within`` window, a relative timestamp operator), for users whose events or traits
cross one of its time boundaries between the previous build's as_of and this one
(``nudge.core.segments.compiler.compile_time_changes``). Such a segment records those users at each
build and the build recomputes just them. Membership that follows the delivery ledger
(``message``) or a hand-written SQL or uploaded segment is recomputed in full on every build.
"""

from __future__ import annotations

from collections.abc import Mapping

from nudge.core.dsl.spec import (
    Attribute,
    Condition,
    InSegment,
    MessageCondition,
    Performed,
    Segment,
)
from nudge.core.dsl.walk import iter_conditions
from nudge.core.segments.comparisons import TIME_RELATIVE_OPERATORS


def recomputed_per_user(
    segment: Segment, segments: Mapping[str, Segment], _seen: frozenset[str] = frozenset()
) -> bool:
    """True when ``segment``'s members can be recomputed user by user: no ``message`` condition,
    ``in_segment`` only on segments for which the same holds."""
    if segment.condition is None or segment.name in _seen:
        return False
    seen = _seen | {segment.name}
    for condition in iter_conditions(segment.condition):
        if isinstance(condition, MessageCondition):
            return False
        if isinstance(condition, InSegment):
            other = segments.get(condition.segment)
            if other is None or not recomputed_per_user(other, segments, seen):
                return False
    return True


def moves_with_time(condition: Condition) -> bool:
    """True when this one condition (not the ones nested in it) can change with as_of alone."""
    if isinstance(condition, Attribute):
        return condition.comparison.op in TIME_RELATIVE_OPERATORS
    if isinstance(condition, Performed):
        return condition.within is not None or any(
            item.comparison.op in TIME_RELATIVE_OPERATORS for item in condition.where
        )
    return False


def segments_read(segment: Segment) -> list[str]:
    """The segments ``segment``'s condition reads (``in_segment``), in order, once each."""
    if segment.condition is None:
        return []
    names = [c.segment for c in iter_conditions(segment.condition) if isinstance(c, InSegment)]
    return list(dict.fromkeys(names))


def records_own_changes(segment: Segment, segments: Mapping[str, Segment]) -> bool:
    """True when a per-user segment changes with time too: a condition of its own, or of a
    segment it reads, moves with time. Its build then records the users it recomputes."""
    if segment.condition is None:
        return False
    if any(moves_with_time(c) for c in iter_conditions(segment.condition)):
        return True
    return any(
        name in segments and records_own_changes(segments[name], segments)
        for name in segments_read(segment)
    )
