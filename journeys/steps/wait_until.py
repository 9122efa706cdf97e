"""``wait_until``: people move on when the condition holds; at the timeout they exit or go on."""

from __future__ import annotations

from datetime import datetime

from journeys.condition_cache import entry_scoped
from journeys.context import JourneyRun
from journeys.program import Instruction
from journeys.steps.at_step import holds_at, interval_sql, move_all, now_sql, set_wake
from journeys.steps.kind import StepEngine, StepView
from nudge.core.dsl.durations import format_duration
from nudge.core.dsl.spec import WaitUntil
from nudge.core.dsl.words import condition_words


def advance(run: JourneyRun, ins: Instruction) -> None:
    wait = ins.step.action
    assert isinstance(wait, WaitUntil)
    met = holds_at(run, ins, wait.condition)
    move_all(run, ins, ins.next_id, "waited", "'condition'", met)
    timeout = f"e.step_reached_at + {interval_sql(wait.timeout)}"
    timed_out = f"{timeout} <= {now_sql(run)}"
    if wait.on_timeout == "continue":
        move_all(run, ins, ins.next_id, "waited", "'timeout'", timed_out)
    else:
        move_all(run, ins, None, "exited", "'timeout'", timed_out, "timeout")
    set_wake(run, ins, timeout)


def outlook(view: StepView, ins: Instruction, wake: datetime | None) -> str:
    wait = ins.step.action
    assert isinstance(wait, WaitUntil)
    if entry_scoped(wait.condition):
        now = "it is judged for this entry above"
    else:
        now = "it holds now" if view.holds(wait.condition) else "it does not hold now"
    then = "exits" if wait.on_timeout == "exit" else "moves on"
    return (
        f"step {ins.id} waits until {condition_words(wait.condition)} ({now}); "
        f"after {format_duration(wait.timeout)}, at {view.when(wake)}, it {then}"
    )


ENGINE = StepEngine(WaitUntil, advance, outlook)
