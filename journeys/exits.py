"""Leaving a journey before advancing: deleted users, removed steps, exit_when, trigger lost, goal.

Applied to every active entry (those admitted in this run included) in this order, after
admission and before anyone advances, so a person admitted while ``exit_when`` holds leaves at
once, unmessaged.
"""

from __future__ import annotations

from journeys.context import JourneyRun
from journeys.moves import apply_moves, stage_moves
from journeys.sqltext import sql_string
from journeys.transitions import record_transitions
from journeys.triggers.registry import trigger_engine
from journeys.versions import removed_step_targets


def apply_exits(run: JourneyRun) -> None:
    journey = run.journey
    if not run.active_count():
        return
    deleted = "not exists (select 1 from marts.dim_users u where u.user_id = e.user_id)"
    _exit_where(run, deleted, "user_deleted")
    _removed_steps(run)
    if journey.exit_when is not None:
        _exit_where(run, run.entry_holds(journey.exit_when, run.active_entries()), "exit_when")
    if journey.exit_on_trigger_lost:
        _trigger_lost(run)
    if journey.goal is not None:
        _goal(run)


def _removed_steps(run: JourneyRun) -> None:
    """People at a step an edit removed move to the next surviving step (or exit)."""
    targets = removed_step_targets(run)
    if not targets:
        return
    cases = " ".join(
        f"when {sql_string(step)} then {'null' if to is None else sql_string(to)}"
        for step, to in targets.items()
    )
    stranded = ", ".join(sql_string(step) for step in targets)
    stage_moves(
        run,
        f"""select entry_id, to_step,
                   case when to_step is null then 'exited' else 'moved' end as action,
                   'step_removed' as detail,
                   case when to_step is null then 'exited' end as end_status,
                   case when to_step is null then 'step_removed' end as exit_reason
            from (select e.entry_id, case e.current_step {cases} end as to_step
                  from nudge.journey_entries e
                  where e.journey = ? and e.status = 'active'
                    and e.current_step in ({stranded}))""",
        [run.journey.name],
    )
    apply_moves(run)


def _exit_where(run: JourneyRun, predicate: str, reason: str) -> None:
    stage_moves(
        run,
        f"""select e.entry_id, null as to_step, 'exited' as action, {sql_string(reason)} as detail,
                   'exited' as end_status, {sql_string(reason)} as exit_reason
            from nudge.journey_entries e
            where e.journey = ? and e.status = 'active' and ({predicate})""",
        [run.journey.name],
    )
    apply_moves(run)


def _trigger_lost(run: JourneyRun) -> None:
    """Leave when what fired no longer holds (segment triggers: ``segment_entered`` and the user
    left the segment, ``segment_exited`` and they are back); the kind says (``lost``)."""
    lost = trigger_engine(run.journey.trigger).lost(run.journey.trigger)
    if lost is not None:
        _exit_where(run, lost, "trigger_lost")


def _goal(run: JourneyRun) -> None:
    """Mark converted the active entries meeting the goal within ``within`` of their start."""
    goal = run.journey.goal
    assert goal is not None
    holds = run.entry_holds(goal.condition, run.active_entries())
    in_time = "true" if goal.within is None else "e.started_at >= ?"
    params = [run.journey.name] + ([] if goal.within is None else [run.as_of - goal.within])
    run.execute(
        f"""create or replace temp table _nj_converted as
            select e.entry_id, e.user_id from nudge.journey_entries e
            where e.journey = ? and e.status = 'active' and e.converted_at is null
              and {in_time} and {holds}""",
        params,
    )
    converted = run.scalar("select count(*) from _nj_converted")
    if not converted:
        return
    run.counts["converted"] += converted
    record_transitions(
        run,
        """select ?, ?, c.entry_id, ?, c.user_id, e.current_step, e.current_step, 'converted', null
           from _nj_converted c join nudge.journey_entries e using (entry_id)""",
        [run.run_id, run.as_of, run.journey.name],
    )
    run.execute(
        """update nudge.journey_entries set converted_at = ?
           where entry_id in (select entry_id from _nj_converted)""",
        [run.as_of],
    )
    if goal.exit:
        _exit_where(run, "e.entry_id in (select entry_id from _nj_converted)", "converted")
