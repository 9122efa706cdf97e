"""Advancing active entries through the program, one set-based statement group per step.

A sweep visits the instructions in program order; since every move goes forward in that order,
one sweep moves each person through consecutive steps until a step makes them wait or they
finish. A sweep visits only steps with people not handled there yet; another sweep would run
only if a move went backwards (none does), and too many raise. What a step does is its kind's
(``journeys.steps``).
"""

from __future__ import annotations

from journeys.context import JourneyRun
from journeys.program import Instruction
from journeys.steps.at_step import holds_at, move_all, now_sql
from journeys.steps.registry import step_engine


def advance(run: JourneyRun) -> None:
    """Visit, in program order, every step that has active entries not handled there yet.

    A step is visited when people wait there at the start and again whenever people arrive;
    handling the same people at the same step twice in one run moves nobody (every handler is a
    function of who is there and of the run's instant), so nothing else needs a visit.
    """
    occupied = run.execute(
        """select distinct e.current_step from nudge.journey_entries e
           where e.journey = ? and e.status = 'active' and e.current_step is not null""",
        [run.journey.name],
    ).fetchall()
    run.arrivals.update(step for (step,) in occupied)
    for _ in range(len(run.program.instructions) + 2):
        if not run.arrivals:
            return
        for ins in run.program.instructions:
            if ins.id in run.arrivals:
                run.arrivals.discard(ins.id)
                _visit(run, ins)
    raise RuntimeError(f"journey {run.journey.name!r}: entries still moving after every sweep")


def _visit(run: JourneyRun, ins: Instruction) -> None:
    if ins.step.if_ is not None:
        _skip_failing_if(run, ins)
    step_engine(ins.step.action).advance(run, ins)


def _skip_failing_if(run: JourneyRun, ins: Instruction) -> None:
    """A user who fails a step's ``if`` on reaching it skips the step."""
    reached_now = f"e.step_reached_at = {now_sql(run)}"
    move_all(
        run,
        ins,
        ins.next_id,
        "skipped_if",
        where=f"{reached_now} and not {holds_at(run, ins, ins.step.if_)}",
    )
