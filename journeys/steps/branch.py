"""``branch``: people for whom the condition holds go to ``then``, the others to ``else``."""

from __future__ import annotations

from journeys.context import JourneyRun
from journeys.program import Instruction
from journeys.steps.at_step import holds_at, move_all
from journeys.steps.kind import StepEngine
from nudge.core.dsl.spec import Branch


def advance(run: JourneyRun, ins: Instruction) -> None:
    branch = ins.step.action
    assert isinstance(branch, Branch)
    then_id, else_id = ins.targets
    move_all(run, ins, then_id, "branched", "'then'", holds_at(run, ins, branch.condition))
    move_all(run, ins, else_id, "branched", "'else'")


def onward(ins: Instruction) -> tuple[tuple[str, str | None], ...]:
    then_id, else_id = ins.targets
    return (("then", then_id), ("else", else_id))


ENGINE = StepEngine(Branch, advance, onward=onward)
