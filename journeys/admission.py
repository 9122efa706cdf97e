"""Admitting new entries from the trigger's candidates, subject to reentry and the entry filter.

A user gets at most one new entry per run (the earliest firing wins), never while an entry of
theirs is active, never twice for the same trigger key (re-running a run admits nobody again),
and, by ``reentry``: never after any earlier entry, or only once ``after`` has passed since the
previous entry started.
"""

from __future__ import annotations

from journeys.condition_cache import entry_scoped
from journeys.context import JourneyRun
from journeys.ids import sql_digest
from journeys.transitions import record_transitions
from nudge.core.dsl.spec import RandomBucket


def admit(run: JourneyRun) -> int:
    """Admit the new entries of this run; return how many."""
    if run.scalar("select count(*) from _nj_candidates"):
        _stage_admissions(run)
        admitted = _enter(run)
    else:
        admitted = 0
    run.execute(
        """insert or ignore into nudge.journey_trigger_events
           select distinct ?, message_id from _nj_considered""",
        [run.journey.name],
    )
    return admitted


def _stage_admissions(run: JourneyRun) -> None:
    """Fill ``_nj_admit`` with this run's new entries.

    Blocked users (by ``reentry``) are set aside first: blocking is decided per user, so it does
    not matter whether it is applied before or after picking each user's earliest firing, and
    the entry filter is then evaluated only for users who could enter.
    """
    journey = run.journey
    blocking = {
        "never": "true",
        "always": "e.status = 'active'",
        "after": "e.status = 'active' or e.started_at > ?",
    }[journey.reentry.mode]
    blocking_params = []
    if journey.reentry.mode == "after":
        if journey.reentry.after is None:
            raise ValueError(f"journey {journey.name!r}: reentry `after` needs a duration")
        blocking_params = [run.as_of - journey.reentry.after]
    run.execute(
        f"""create or replace temp table _nj_unblocked as
            select c.* from _nj_candidates c
            where c.user_id in (select user_id from marts.dim_users)
              and not exists (
                  select 1 from nudge.journey_entries e
                  where e.journey = ? and e.user_id = c.user_id and ({blocking}))""",
        [journey.name, *blocking_params],
    )
    scope = "select user_id from _nj_unblocked"
    filters = ""
    if journey.entry_filter is not None and entry_scoped(journey.entry_filter):
        # Judged per firing (each would be its own entry, started now, at the first step), so
        # the earliest firing that passes starts the entry.
        firings = f"""select {sql_digest("?", "user_id", "trigger_key")} as entry_id, user_id,
                             trigger_key, ? as started_at, ? as step_reached_at
                      from _nj_unblocked"""
        run.execute(
            f"create or replace temp table _nj_firings as {firings}",
            [journey.name, run.as_of, run.as_of],
        )
        passing = run.entry_holds(journey.entry_filter, "select * from _nj_firings")
        filters = f"""and exists (select 1 from _nj_firings e where e.user_id = c.user_id
                                  and e.trigger_key = c.trigger_key and {passing})"""
    elif journey.entry_filter is not None:
        filters = f"and c.user_id in ({run.conditions.holding(journey.entry_filter, scope)})"
    holdout = "false"
    if journey.holdout_percent:
        bucket = RandomBucket(journey.holdout_percent, salt=journey.name)
        holdout = f"c.user_id in ({run.conditions.holding(bucket, scope)})"
    run.execute(
        f"""create or replace temp table _nj_admit as
            with firsts as (
                select c.user_id, c.trigger_key, {holdout} as holdout,
                       row_number() over (
                           partition by c.user_id order by c.trigger_at, c.trigger_key) as rank
                from _nj_unblocked c
                where true {filters}
            )
            select {sql_digest("?", "f.user_id", "f.trigger_key")} as entry_id,
                   f.user_id, f.trigger_key, f.holdout
            from firsts f
            where f.rank = 1""",
        [journey.name],
    )
    run.execute(
        """delete from _nj_admit
           where entry_id in (select entry_id from nudge.journey_entries)""",
    )


def _enter(run: JourneyRun) -> int:
    """Insert the staged entries at the first step with their ``entered`` transitions."""
    journey = run.journey
    admitted = run.scalar("select count(*) from _nj_admit")
    if not admitted:
        return 0
    first = run.program.first_id
    run.execute(
        """insert or ignore into nudge.journey_entries
               (entry_id, journey, user_id, trigger_key, started_at, status, current_step,
                step_reached_at, holdout, journey_version)
           select entry_id, ?, user_id, trigger_key, ?, 'active', ?, ?, holdout, ?
           from _nj_admit""",
        [journey.name, run.as_of, first, run.as_of, run.version],
    )
    record_transitions(
        run,
        """select ?, ?, entry_id, ?, user_id, null, ?, 'entered', trigger_key from _nj_admit""",
        [run.run_id, run.as_of, journey.name, first],
    )
    return admitted
