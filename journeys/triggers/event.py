"""``event``: matching events within max_event_age of as_of, not yet considered.

The ``where`` items are compiled by the segment compiler, so they follow exactly the rules of a
``performed`` condition's ``where``. The trick: the compiler is handed relations in which each
candidate event is its own "user" (``user_id`` := ``message_id``), so the ids it returns are the
message ids of the matching events.
"""

from __future__ import annotations

from dataclasses import replace

from journeys.context import JourneyRun
from journeys.sqltext import sql_string
from journeys.triggers.kind import TriggerEngine, TriggerView, never_lost
from nudge.core.dsl.spec import EventTrigger, Performed
from nudge.core.segments.compiler import compile_condition


def matching_events_sql(run: JourneyRun, trigger: EventTrigger, events: str) -> str:
    """``select message_id, user_id, timestamp`` of the track events of ``events`` (a relation
    with the columns of ``marts.fct_events``) that ``trigger`` matches."""
    named = f"select * from {events} where event = {sql_string(trigger.name)}"
    if not trigger.where:
        return f"select message_id, user_id, timestamp from ({named})"
    per_event = replace(
        run.conditions.relations,
        users=f"(select message_id as user_id from ({named}))",
        events=(f"(select message_id as user_id, event, timestamp, properties from ({named}))"),
    )
    matching = compile_condition(Performed(trigger.name, where=trigger.where), per_event)
    return f"""select message_id, user_id, timestamp from ({named})
               where message_id in ({matching})"""


def fill(run: JourneyRun, trigger: EventTrigger) -> None:
    """An older event can never start an entry (runs move forward in time), so it is not even
    read: a run reads the last ``max_event_age`` of events, not the whole history. Events already
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


def why_not(view: TriggerView, trigger: EventTrigger, words: str) -> str:
    row = view.row(
        "select count(*), max(timestamp) from marts.fct_events where user_id = ? and event = ?",
        [view.user_id, trigger.name],
    )
    count, last = row or (0, None)
    if not count:
        return f"{words}: the user never performed {trigger.name}, so it never fired"
    times = "once" if count == 1 else f"{count} times"
    return (
        f"{words}: the user performed {trigger.name} {times} (last at {last}); none started an "
        "entry (its where items, or older than the journey's max_event_age)"
    )


ENGINE = TriggerEngine(EventTrigger, fill, never_lost, why_not)
