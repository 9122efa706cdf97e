"""Which segments a journey reads, so its asset depends on exactly those segment assets."""

from __future__ import annotations

from nudge.core.dsl import spec as m
from nudge.core.dsl.walk import journey_segment_reads


def journey_segments(journey: m.Journey) -> set[str]:
    return {segment for _, segment in journey_segment_reads(journey)}
