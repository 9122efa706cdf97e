"""Applying a set of moves: every stage describes its moves in one temp table, applied here.

``_nj_move(entry_id, to_step, action, detail, end_status, exit_reason)``: each listed entry leaves
its current step for ``to_step``. ``to_step`` NULL ends the entry: as ``end_status`` when given
(``exited``, keeping the step it left as ``current_step``), else it completes the journey. Each
move writes one ``journey_transitions`` row; a completion writes a second, ``completed``, row.
"""

from __future__ import annotations

from journeys.context import JourneyRun
from journeys.transitions import record_transitions

MOVE_COLUMNS = "entry_id, to_step, action, detail, end_status, exit_reason"


def stage_moves(run: JourneyRun, select_sql: str, params: list | None = None) -> None:
    """Fill ``_nj_move`` from a query returning :data:`MOVE_COLUMNS`."""
    run.execute(f"create or replace temp table _nj_move as {select_sql}", params)


def apply_moves(run: JourneyRun) -> None:
    """Apply the staged moves; count them per action in ``run.counts``; note the steps that
    people arrived at in ``run.arrivals``."""
    groups = run.execute(
        """select action, to_step, end_status is null and to_step is null, count(*)
           from _nj_move group by all"""
    ).fetchall()
    if not groups:
        return
    completed = 0
    for action, to_step, completes, n in groups:
        run.counts[action] += n
        completed += n if completes else 0
        if to_step is not None:
            run.arrivals.add(to_step)
    common = [run.run_id, run.as_of, run.journey.name]
    record_transitions(
        run,
        """select ?, ?, m.entry_id, ?, e.user_id, e.current_step, m.to_step, m.action, m.detail
           from _nj_move m join nudge.journey_entries e using (entry_id)""",
        common,
    )
    if completed:
        record_transitions(
            run,
            """select ?, ?, m.entry_id, ?, e.user_id, e.current_step, null, 'completed', null
               from _nj_move m join nudge.journey_entries e using (entry_id)
               where m.to_step is null and m.end_status is null""",
            common,
        )
    run.counts["completed"] += completed
    run.execute(
        """update nudge.journey_entries e set
               current_step = case when m.end_status is null then m.to_step else e.current_step end,
               step_reached_at = ?,
               next_wake_at = null,
               status = case
                   when m.end_status is not null then m.end_status
                   when m.to_step is null then 'completed'
                   else 'active' end,
               exit_reason = m.exit_reason,
               ended_at = case when m.to_step is null then ? end
           from _nj_move m
           where e.entry_id = m.entry_id""",
        [run.as_of, run.as_of],
    )
