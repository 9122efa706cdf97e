"""``wait``: people move on once the duration has passed since they reached the step."""

from __future__ import annotations

from datetime import datetime

from journeys.context import JourneyRun
from journeys.program import Instruction
from journeys.steps.at_step import interval_sql, move_all, now_sql, set_wake
from journeys.steps.kind import StepEngine, StepView
from nudge.core.dsl.spec import Wait
from nudge.core.dsl.steps import wait as syntax


def advance(run: JourneyRun, ins: Instruction) -> None:
    wait = ins.step.action
    assert isinstance(wait, Wait)
    due = f"e.step_reached_at + {interval_sql(wait.duration)}"
    move_all(run, ins, ins.next_id, "waited", where=f"{due} <= {now_sql(run)}")
    set_wake(run, ins, due)


def outlook(view: StepView, ins: Instruction, wake: datetime | None) -> str:
    return f"step {ins.id} {syntax.words(ins.step.action)}: moves on at {view.when(wake)}"


ENGINE = StepEngine(Wait, advance, outlook)
