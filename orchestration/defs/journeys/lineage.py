"""Which segments a journey reads, so its asset depends on exactly those segment assets."""

from __future__ import annotations

from collections.abc import Iterator

from nudge.dsl import models as m


def condition_segments(condition: m.Condition | None) -> Iterator[str]:
    match condition:
        case m.InSegment(segment=segment):
            yield segment
        case m.All(conditions=children) | m.AnyOf(conditions=children):
            for child in children:
                yield from condition_segments(child)
        case m.Not(condition=child):
            yield from condition_segments(child)


def step_conditions(steps: tuple[m.Step, ...]) -> Iterator[m.Condition]:
    for step in steps:
        if step.if_ is not None:
            yield step.if_
        match step.action:
            case m.WaitUntil(condition=condition):
                yield condition
            case m.Branch(condition=condition, then=then, otherwise=otherwise):
                yield condition
                yield from step_conditions(then)
                yield from step_conditions(otherwise)
            case m.Split(paths=paths):
                for path in paths:
                    yield from step_conditions(path.steps)


def journey_segments(journey: m.Journey) -> set[str]:
    segments: set[str] = set()
    match journey.trigger:
        case m.SegmentEntered(segment=s) | m.SegmentExited(segment=s) | m.Broadcast(segment=s):
            segments.add(s)
    conditions = [journey.entry_filter, journey.exit_when, *step_conditions(journey.steps)]
    if journey.goal is not None:
        conditions.append(journey.goal.condition)
    for condition in conditions:
        segments.update(condition_segments(condition))
    return segments
