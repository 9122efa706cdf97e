"""Walking the typed definitions: every nested condition, every nested step."""

from __future__ import annotations

from collections.abc import Iterator

from nudge.core.dsl.spec import (
    All,
    AnyOf,
    Branch,
    Condition,
    InSegment,
    Journey,
    Not,
    Segment,
    Split,
    Step,
    WaitUntil,
)


def iter_conditions(condition: Condition) -> Iterator[Condition]:
    """``condition`` and every condition nested in it, depth first."""
    yield condition
    if isinstance(condition, All | AnyOf):
        for part in condition.conditions:
            yield from iter_conditions(part)
    elif isinstance(condition, Not):
        yield from iter_conditions(condition.condition)


def iter_steps(steps: tuple[Step, ...], path: str = "steps") -> Iterator[tuple[str, Step]]:
    """Every step with its field path (``steps[2].branch.then[0]``), nested ones included."""
    for i, step in enumerate(steps):
        at = f"{path}[{i}]"
        yield at, step
        action = step.action
        if isinstance(action, Branch):
            yield from iter_steps(action.then, f"{at}.branch.then")
            yield from iter_steps(action.otherwise, f"{at}.branch.else")
        elif isinstance(action, Split):
            for j, split_path in enumerate(action.paths):
                yield from iter_steps(split_path.steps, f"{at}.split[{j}].steps")


def journey_conditions(journey: Journey) -> Iterator[tuple[str, Condition]]:
    """Every top-level condition of a journey with its field path."""
    if journey.entry_filter is not None:
        yield "entry_filter", journey.entry_filter
    if journey.exit_when is not None:
        yield "exit_when", journey.exit_when
    if journey.goal is not None:
        yield "goal.condition", journey.goal.condition
    for at, step in iter_steps(journey.steps):
        if step.if_ is not None:
            yield f"{at}.if", step.if_
        if isinstance(step.action, Branch):
            yield f"{at}.branch.if", step.action.condition
        elif isinstance(step.action, WaitUntil):
            yield f"{at}.wait_until.condition", step.action.condition


def segment_dependencies(segment: Segment) -> set[str]:
    """Names of the segments that ``segment`` reads through ``in_segment``."""
    if segment.condition is None:
        return set()
    return {c.segment for c in iter_conditions(segment.condition) if isinstance(c, InSegment)}
