"""Which segments a journey reads, so its asset depends on exactly those segment assets."""

from __future__ import annotations

from nudge.core.dsl import spec as m
from nudge.core.dsl.walk import iter_conditions, journey_conditions


def journey_segments(journey: m.Journey) -> set[str]:
    segments: set[str] = set()
    match journey.trigger:
        case m.SegmentEntered(segment=s) | m.SegmentExited(segment=s) | m.Broadcast(segment=s):
            segments.add(s)
    for _, condition in journey_conditions(journey):
        segments.update(c.segment for c in iter_conditions(condition) if isinstance(c, m.InSegment))
    return segments
