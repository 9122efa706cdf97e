"""SQL shared by the step handlers: moving the entries at a step, judging a condition for
them, the run's instant, and setting when they wake up."""

from __future__ import annotations

from datetime import timedelta

from journeys.context import JourneyRun
from journeys.moves import apply_moves, stage_moves
from journeys.program import Instruction
from journeys.sqltext import sql_string
from nudge.core.dsl.spec import Condition


def literal(value: str | None) -> str:
    return "null" if value is None else sql_string(value)


def move_all(
    run: JourneyRun,
    ins: Instruction,
    to_step: str | None,
    action: str,
    detail: str = "null",
    where: str = "true",
    exit_reason: str | None = None,
) -> None:
    """Move the entries at ``ins`` satisfying ``where`` to ``to_step`` (or out, with a reason)."""
    end_status = None if exit_reason is None else "exited"
    stage_moves(
        run,
        f"""select e.entry_id, {literal(to_step)} as to_step, {sql_string(action)} as action,
                   {detail} as detail, {literal(end_status)} as end_status,
                   {literal(exit_reason)} as exit_reason
            from nudge.journey_entries e where {run.active_at(ins.id)} and ({where})""",
    )
    apply_moves(run)


def holds_at(run: JourneyRun, ins: Instruction, condition: Condition) -> str:
    """SQL predicate on ``e``, an entry at ``ins``: ``condition`` holds for it (for its user,
    unless the condition is scoped to the entry)."""
    return run.entry_holds(condition, run.active_entries(run.active_at(ins.id)))


def now_sql(run: JourneyRun) -> str:
    return f"timestamp '{run.as_of.isoformat(sep=' ')}'"


def interval_sql(duration: timedelta) -> str:
    return f"to_seconds({duration / timedelta(seconds=1)})"


def set_wake(run: JourneyRun, ins: Instruction, wake_sql: str) -> None:
    """Set ``next_wake_at`` of the entries waiting at ``ins`` (rows already right are left)."""
    run.execute(
        f"""update nudge.journey_entries e set next_wake_at = {wake_sql}
            where {run.active_at(ins.id)} and e.next_wake_at is distinct from {wake_sql}"""
    )
