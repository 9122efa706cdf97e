"""What the engine needs to know about a step kind: how it moves the people at the step, and
what ``nudge explain --journey`` says about it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from journeys.context import JourneyRun
from journeys.program import Instruction
from nudge.core.dsl.spec import Condition


class StepView(Protocol):
    """What a kind may ask of the explanation it is part of (``journeys.explain``)."""

    as_of: datetime
    traits: Mapping[str, Any]

    def holds(self, condition: Condition) -> bool:
        """Whether ``condition`` holds for the user now (not scoped to the entry)."""
        ...

    def when(self, moment: datetime | None) -> str:
        """``moment`` in words relative to the as_of ("... (in 2d)", "never")."""
        ...


def runs_at_next_run(view: StepView, ins: Instruction, wake: datetime | None) -> str:
    """The outlook of a step that does its work as soon as someone is there."""
    return f"step {ins.id} {ins.kind} runs at the next run"


def goes_to_next(ins: Instruction) -> tuple[tuple[str, str | None], ...]:
    """Where people go after a step with one way on: the next step (None: the journey ends)."""
    return (("", ins.next_id),)


@dataclass(frozen=True)
class StepEngine:
    action: type
    # Set-based SQL moving the people at the step: writes journey_transitions (through
    # journeys.moves) and, for a waiting step, next_wake_at.
    advance: Callable[[JourneyRun, Instruction], None]
    # For someone at the step: what happens next and when (wake: their next_wake_at).
    outlook: Callable[[StepView, Instruction, datetime | None], str] = runs_at_next_run
    # Where people go after the step: (label, step id or None for the end) per way on; the
    # label is empty for the one way on of most kinds.
    onward: Callable[[Instruction], tuple[tuple[str, str | None], ...]] = goes_to_next
