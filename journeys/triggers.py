"""Who a journey's trigger fires for in this run.

Each trigger fills the temp table ``_nj_candidates(user_id, trigger_key, trigger_at)`` (one row per
firing; ``trigger_key`` makes the entry id stable) and lists the trigger keys it consumed in
``_nj_considered(message_id)``: event message ids (of events within the journey's max_event_age),
a date trigger's user and trait value, and a broadcast's key are considered once per journey,
whether or not they start an entry, and are recorded in ``nudge.journey_trigger_events``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from journeys.context import JourneyRun
from journeys.events import matching_events_sql
from journeys.sqltext import (
    at_local_clock_sql,
    json_path,
    sql_string,
    zone_sql,
)
from nudge.core.dsl.spec import (
    AttributeChanged,
    Broadcast,
    DateTrigger,
    EventTrigger,
    SegmentEntered,
    SegmentExited,
)

# The ``at`` clock of a date trigger moves a due time by less than this, either way.
AT_CLOCK_MARGIN = timedelta(days=3)


def fill_candidates(run: JourneyRun) -> None:
    run.execute(
        "create or replace temp table _nj_candidates "
        "(user_id varchar, trigger_key varchar, trigger_at timestamp)"
    )
    run.execute("create or replace temp table _nj_considered (message_id varchar)")
    trigger = run.journey.trigger
    match trigger:
        case SegmentEntered(segment):
            _segment_change(run, segment, "entered_at", "segment_entered")
        case SegmentExited(segment):
            _segment_change(run, segment, "exited_at", "segment_exited")
        case EventTrigger():
            _events(run, trigger)
        case AttributeChanged():
            _attribute_changed(run, trigger)
        case DateTrigger():
            _date(run, trigger)
        case Broadcast():
            _broadcast(run, trigger)
        case _:
            raise ValueError(f"journey {run.journey.name!r}: unknown trigger {trigger!r}")


def _segment_change(run: JourneyRun, segment: str, column: str, label: str) -> None:
    """History rows whose change this very run first saw (their ``column`` equals as_of)."""
    key = f"{label}:{segment}:{run.as_of.isoformat()}"
    run.execute(
        f"""insert into _nj_candidates
            select distinct user_id, ?, {column}
            from marts.fct_segment_membership_history
            where segment = ? and {column} = ?""",
        [key, segment, run.as_of],
    )


def _events(run: JourneyRun, trigger: EventTrigger) -> None:
    """Matching events within max_event_age of as_of, not yet considered.

    An older event can never start an entry (runs move forward in time), so it is not even read:
    a run reads the last ``max_event_age`` of events, not the whole history. Events already
    considered are set aside before the ``where`` items are evaluated.
    """
    run.execute(
        """create or replace temp table _nj_new_events as
           select f.* from marts.fct_events f
           where f.event = ? and f.timestamp >= ? and not exists (
               select 1 from nudge.journey_trigger_events t
               where t.journey = ? and t.message_id = f.message_id)""",
        [trigger.name, run.as_of - run.journey.max_event_age, run.journey.name],
    )
    matches = matching_events_sql(run, trigger, "_nj_new_events")
    run.execute(
        f"create or replace temp table _nj_event_matches as select * from ({matches}) m",
    )
    run.execute("insert into _nj_considered select message_id from _nj_event_matches")
    run.execute(
        "insert into _nj_candidates select user_id, message_id, timestamp from _nj_event_matches"
    )
    run.execute("drop table _nj_event_matches")
    run.execute("drop table _nj_new_events")


def _attribute_changed(run: JourneyRun, trigger: AttributeChanged) -> None:
    """Users whose current value differs from the last one this journey saw (a first value counts)."""
    current = f"json(u.traits -> {sql_string(json_path(trigger.name))})"
    run.execute(
        f"""create or replace temp table _nj_changed as
            select u.user_id, {current} as value
            from marts.dim_users u
            left join nudge.journey_attribute_state s
              on s.journey = ? and s.user_id = u.user_id
            where (s.user_id is null and {current} is not null)
               or (s.user_id is not null and {current} is distinct from s.value)""",
        [run.journey.name],
    )
    key = f"attribute_changed:{trigger.name}:{run.as_of.isoformat()}"
    if not trigger.has_to:
        wanted, params = "true", []
    elif trigger.to is None:
        wanted, params = "value is null", []
    else:
        wanted, params = "value = json(?)", [json.dumps(trigger.to)]
    run.execute(
        f"insert into _nj_candidates select user_id, ?, ? from _nj_changed where {wanted}",
        [key, run.as_of, *params],
    )
    run.execute(
        """insert or replace into nudge.journey_attribute_state
           select ?, user_id, value, ? from _nj_changed""",
        [run.journey.name, run.as_of],
    )
    run.execute("drop table _nj_changed")


def _date(run: JourneyRun, trigger: DateTrigger) -> None:
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
            zone = zone_sql("zone_name", "UTC")
            # Only the due times near as_of need the user's zone (few, usually none).
            if run.scalar("select count(*) from _nj_dates where due_at > ?", [near]):
                run.execute(
                    """update _nj_dates d set zone_name = z.value ->> '$'
                       from marts.dim_user_traits z
                       where z.user_id = d.user_id and z.trait = ? and d.due_at > ?""",
                    [trigger.timezone_attribute, near],
                )
        where = f"journey {run.journey.name!r}: date trigger `at`"
        at_clock = at_local_clock_sql("due_at", trigger.at, zone, where)
        due = f"case when due_at <= ? then true else {at_clock} <= ? end"
        due_params = [near, run.as_of]
    run.execute(f"delete from _nj_dates where ({due}) is not true", due_params)
    run.execute("insert into _nj_considered select considered_key from _nj_dates")
    run.execute(
        "insert into _nj_candidates select user_id, ? || raw_value, ? from _nj_dates",
        [key, run.as_of],
    )
    run.execute("drop table _nj_dates")


def _broadcast(run: JourneyRun, trigger: Broadcast) -> None:
    """Every member of the segment, once, at the first run with as_of >= at."""
    if trigger.at is not None and run.as_of < _naive_utc(trigger.at):
        return
    key = f"broadcast:{trigger.segment}:{trigger.at.isoformat() if trigger.at else 'first run'}"
    already = run.scalar(
        "select count(*) from nudge.journey_trigger_events where journey = ? and message_id = ?",
        [run.journey.name, key],
    )
    if already:
        return
    run.execute("insert into _nj_considered values (?)", [key])
    run.execute(
        """insert into _nj_candidates
           select distinct user_id, ?, ? from marts.fct_segment_memberships where segment = ?""",
        [key, run.as_of, trigger.segment],
    )


def _naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
