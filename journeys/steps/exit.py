"""``exit``: everyone at the step leaves the journey."""

from __future__ import annotations

from journeys.context import JourneyRun
from journeys.program import Instruction
from journeys.steps.at_step import move_all
from journeys.steps.kind import StepEngine
from nudge.core.dsl.spec import Exit


def advance(run: JourneyRun, ins: Instruction) -> None:
    move_all(run, ins, None, "exited", "'exit step'", exit_reason="exit_step")


def onward(ins: Instruction) -> tuple[tuple[str, str | None], ...]:
    return ()


ENGINE = StepEngine(Exit, advance, onward=onward)
