"""``segment_entered`` and ``segment_exited``: a user joins or leaves a segment."""

from __future__ import annotations

from typing import Any

from nudge.core.dsl.reader import Reader
from nudge.core.dsl.spec import SegmentEntered, SegmentExited
from nudge.core.dsl.triggers.kind import TriggerKind


def parse_entered(r: Reader, value: Any, path: str) -> SegmentEntered | None:
    segment = r.string(value, path)
    return None if segment is None else SegmentEntered(segment)


def parse_exited(r: Reader, value: Any, path: str) -> SegmentExited | None:
    segment = r.string(value, path)
    return None if segment is None else SegmentExited(segment)


def segments(trigger: SegmentEntered | SegmentExited) -> tuple[tuple[str, str], ...]:
    return (("", trigger.segment),)


ENTERED = TriggerKind(
    "segment_entered",
    SegmentEntered,
    parse_entered,
    lambda trigger: f"entering segment {trigger.segment}",
    segments=segments,
)
EXITED = TriggerKind(
    "segment_exited",
    SegmentExited,
    parse_exited,
    lambda trigger: f"leaving segment {trigger.segment}",
    segments=segments,
)
