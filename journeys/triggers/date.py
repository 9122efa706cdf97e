"""``date``: users whose trait time plus offset (at ``at`` local time when given) is due."""

from __future__ import annotations

from datetime import timedelta

from journeys.context import JourneyRun
from journeys.sqltext import at_local_clock_sql
from journeys.triggers.kind import TriggerEngine
from nudge.core.clock import zone_or_default_sql
from nudge.core.dsl.spec import DateTrigger

# The ``at`` clock of a date trigger moves a due time by less than this, either way.
AT_CLOCK_MARGIN = timedelta(days=3)


def fill(run: JourneyRun, trigger: DateTrigger) -> None:
    """Users whose trait time plus offset (at ``at`` local time when given) is at or before as_of.

    Each user's trait value fires once, at the first run where it is due (docs/authoring.md),
    whether or not it starts an entry: a user the entry filter or ``reentry`` turns away then is
    not offered the same value again. The user and value are recorded as considered (``date:<attribute>:<user as
    JSON>:<value as JSON>``); the trigger key carries only the value, as entry ids always have. A
    user fires once per run at most (one trait value), so ``trigger_at`` is the run's as_of. The
    ``at`` clock (costly: time zone arithmetic) is worked out only for due times within
    :data:`AT_CLOCK_MARGIN` of as_of.
    """
    offset = trigger.offset / timedelta(seconds=1)
    key = f"date:{trigger.attribute}:"
    horizon = run.as_of if trigger.at is None else run.as_of + AT_CLOCK_MARGIN
    # The trait's time comes parsed (value_timestamp: the segment compiler's rule), so that a
    # date trigger and a segment condition agree on what is a time, and nothing is parsed here.
    run.execute(
        f"""create or replace temp table _nj_dates as
            with due as (
                select t.user_id, json(t.value) as raw_value,
                       t.value_timestamp + to_seconds({offset}) as due_at,
                       ? || to_json(t.user_id) || ':' || json(t.value) as considered_key,
                       cast(null as varchar) as zone_name
                from marts.dim_user_traits t
                where t.trait = ? and t.value_timestamp + to_seconds({offset}) <= ?
            )
            select * from due
            where considered_key not in (
                select message_id from nudge.journey_trigger_events where journey = ?)""",
        [key, trigger.attribute, horizon, run.journey.name],
    )
    due, due_params = "true", []
    if trigger.at is not None:
        near = run.as_of - AT_CLOCK_MARGIN  # due times before this are due whatever the clock
        zone = "'UTC'"
        if trigger.timezone_attribute is not None:
            zone = zone_or_default_sql("zone_name", "UTC")
            # Only the due times near as_of need the user's zone (few, usually none).
            if run.scalar("select count(*) from _nj_dates where due_at > ?", [near]):
                run.execute(
                    """update _nj_dates d set zone_name = z.value ->> '$'
                       from marts.dim_user_traits z
                       where z.user_id = d.user_id and z.trait = ? and d.due_at > ?""",
                    [trigger.timezone_attribute, near],
                )
        where = f"journey {run.journey.name!r}: date trigger `at`"
        # A trait holding a date alone ("2026-04-10", as JSON): that day in the user's zone.
        calendar_day = """cast(raw_value as varchar) like '"____-__-__"'"""
        at_clock = at_local_clock_sql("due_at", trigger.at, zone, where, calendar_day)
        due = f"case when due_at <= ? then true else {at_clock} <= ? end"
        due_params = [near, run.as_of]
    run.execute(f"delete from _nj_dates where ({due}) is not true", due_params)
    run.execute("insert into _nj_considered select considered_key from _nj_dates")
    run.execute(
        "insert into _nj_candidates select user_id, ? || raw_value, ? from _nj_dates",
        [key, run.as_of],
    )
    run.execute("drop table _nj_dates")


ENGINE = TriggerEngine(DateTrigger, fill)
