"""Walking the typed definitions: every nested condition, every nested step, every segment read.

The one walker of condition trees: checks, explain, the segment compiler and the lineage all use
``walk_conditions`` (or ``iter_conditions``). Nested steps and conditions of a step come from its
kind (``nudge.core.dsl.steps.registry``), so a new step kind is walked without a change here.
"""

from __future__ import annotations

from collections.abc import Iterator

from nudge.core.dsl.spec import (
    CHANNELS,
    All,
    AnyOf,
    Condition,
    Content,
    InSegment,
    Journey,
    Not,
    Segment,
    Send,
    Step,
    Topic,
)
from nudge.core.dsl.steps.registry import step_kind
from nudge.core.dsl.triggers.registry import trigger_kind


def walk_conditions(
    condition: Condition, path: str = "condition"
) -> Iterator[tuple[str, Condition]]:
    """``condition`` and every condition nested in it, depth first, each with its field path
    (``condition.all[1].not``: the path of the node, without the node's own key)."""
    yield path, condition
    if isinstance(condition, All | AnyOf):
        key = "all" if isinstance(condition, All) else "any"
        for i, part in enumerate(condition.conditions):
            yield from walk_conditions(part, f"{path}.{key}[{i}]")
    elif isinstance(condition, Not):
        yield from walk_conditions(condition.condition, f"{path}.not")


def iter_conditions(condition: Condition) -> Iterator[Condition]:
    """``condition`` and every condition nested in it, depth first."""
    for _, part in walk_conditions(condition):
        yield part


def iter_steps(steps: tuple[Step, ...], path: str = "steps") -> Iterator[tuple[str, Step]]:
    """Every step with its field path (``steps[2].branch.then[0]``), nested ones included.
    Steps that did not parse (``action`` None) are listed but have nothing nested."""
    for i, step in enumerate(steps):
        at = f"{path}[{i}]"
        yield at, step
        if step.action is None:
            continue
        kind = step_kind(step.action)
        for suffix, nested in kind.nested(step.action):
            yield from iter_steps(nested, f"{at}.{kind.key}{suffix}")


def journey_conditions(journey: Journey) -> Iterator[tuple[str, Condition]]:
    """Every top-level condition of a journey with its field path."""
    for path, _, condition in journey_conditions_by_step(journey):
        yield path, condition


def journey_conditions_by_step(
    journey: Journey,
) -> Iterator[tuple[str, Step | None, Condition]]:
    """Every top-level condition of a journey with its field path and the step it belongs to
    (None for the journey's own: ``entry_filter``, ``exit_when``, ``goal``)."""
    if journey.entry_filter is not None:
        yield "entry_filter", None, journey.entry_filter
    if journey.exit_when is not None:
        yield "exit_when", None, journey.exit_when
    if journey.goal is not None:
        yield "goal.condition", None, journey.goal.condition
    for at, step in iter_steps(journey.steps):
        if step.if_ is not None:
            yield f"{at}.if", step, step.if_
        if step.action is None:
            continue
        kind = step_kind(step.action)
        for suffix, condition in kind.conditions(step.action):
            if condition is not None:  # None only in a step whose problems are reported
                yield f"{at}.{kind.key}{suffix}", step, condition


def journey_segment_reads(journey: Journey) -> Iterator[tuple[str, str]]:
    """Every segment a journey reads (its trigger's, and ``in_segment`` in its conditions), each
    with the field path that names it."""
    if journey.trigger is not None:
        kind = trigger_kind(journey.trigger)
        for suffix, segment in kind.segments(journey.trigger):
            yield f"trigger.{kind.key}{suffix}", segment
    for path, condition in journey_conditions(journey):
        for at, part in walk_conditions(condition, path):
            if isinstance(part, InSegment):
                yield f"{at}.in_segment", part.segment


def segment_dependencies(segment: Segment) -> set[str]:
    """Names of the segments that ``segment`` reads through ``in_segment``."""
    if segment.condition is None:
        return set()
    return {c.segment for c in iter_conditions(segment.condition) if isinstance(c, InSegment)}


# The channels a person chooses on when a topic neither declares channels nor is sent anywhere
# (webhook and slack messages go to systems, not to the person).
PERSON_CHANNELS = tuple(c for c in CHANNELS if c not in ("webhook", "slack"))


def topic_channels(content: Content, topic: Topic) -> tuple[str, ...]:
    """The channels a person chooses on for ``topic`` (the preference page): those it declares,
    else those its sends use (in ``CHANNELS`` order), else ``PERSON_CHANNELS``."""
    if topic.channels:
        return topic.channels
    used = {
        step.action.channel
        for journey in content.journeys
        for _, step in iter_steps(journey.steps)
        if isinstance(step.action, Send) and step.action.topic == topic.name
    }
    return tuple(c for c in CHANNELS if c in used) or PERSON_CHANNELS
