"""Who a journey's trigger fires for in this run.

Each trigger fills the temp table ``_nj_candidates(user_id, trigger_key, trigger_at)`` (one row per
firing; ``trigger_key`` makes the entry id stable) and lists the trigger keys it consumed in
``_nj_considered(message_id)``: event message ids (and a broadcast's key) are considered once per
journey, whether or not they start an entry, and are recorded in ``nudge.journey_trigger_events``.
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
    trait_timestamp_sql,
    user_zone_sql,
)
from nudge.dsl.models import (
    AttributeChanged,
    Broadcast,
    DateTrigger,
    EventTrigger,
    SegmentEntered,
    SegmentExited,
)


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
    """Matching events not yet considered; only those within max_event_age may start an entry."""
    matches = matching_events_sql(run, trigger)
    run.execute(
        f"""create or replace temp table _nj_event_matches as
            select m.message_id, m.user_id, m.timestamp
            from ({matches}) m
            where not exists (
                select 1 from nudge.journey_trigger_events t
                where t.journey = ? and t.message_id = m.message_id)""",
        [run.journey.name],
    )
    run.execute("insert into _nj_considered select message_id from _nj_event_matches")
    run.execute(
        """insert into _nj_candidates
           select user_id, message_id, timestamp from _nj_event_matches where timestamp >= ?""",
        [run.as_of - run.journey.max_event_age],
    )
    run.execute("drop table _nj_event_matches")


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

    The trigger key carries the trait's value, so each value fires at most once per user.
    """
    path = sql_string(json_path(trigger.attribute))
    offset = trigger.offset / timedelta(seconds=1)
    due = (
        f"({trait_timestamp_sql('u.traits', json_path(trigger.attribute))} + to_seconds({offset}))"
    )
    if trigger.at is not None:
        zone = user_zone_sql("u.traits", trigger.timezone_attribute, "UTC")
        where = f"journey {run.journey.name!r}: date trigger `at`"
        due = at_local_clock_sql(due, trigger.at, zone, where)
    run.execute(
        f"""insert into _nj_candidates
            select user_id, ? || raw_value, due_at from (
                select u.user_id, json(u.traits -> {path}) as raw_value, {due} as due_at
                from marts.dim_users u
            ) where due_at is not null and due_at <= ?""",
        [f"date:{trigger.attribute}:", run.as_of],
    )


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
