"""Which parts of a journey definition the engine cannot run yet (the validator refuses those)."""

from __future__ import annotations

from journeys.program import KINDS
from nudge.dsl.models import (
    AttributeChanged,
    Branch,
    Broadcast,
    DateTrigger,
    EventTrigger,
    Journey,
    SegmentEntered,
    SegmentExited,
    Split,
    Step,
)

SUPPORTED_TRIGGERS = (
    SegmentEntered,
    SegmentExited,
    EventTrigger,
    AttributeChanged,
    DateTrigger,
    Broadcast,
)


def unsupported_features(journey: Journey) -> list[str]:
    """Names of the features ``journey`` uses that the engine does not implement (empty: none)."""
    found: list[str] = []
    if not isinstance(journey.trigger, SUPPORTED_TRIGGERS):
        found.append(f"trigger {type(journey.trigger).__name__}")
    kinds = _step_kinds(journey.steps)
    found += sorted(f"step kind {k.__name__}" for k in kinds if k not in KINDS)
    return found


def _step_kinds(steps: tuple[Step, ...]) -> set[type]:
    kinds: set[type] = set()
    for step in steps:
        kinds.add(type(step.action))
        if isinstance(step.action, Branch):
            kinds |= _step_kinds(step.action.then) | _step_kinds(step.action.otherwise)
        elif isinstance(step.action, Split):
            for path in step.action.paths:
                kinds |= _step_kinds(path.steps)
    return kinds
