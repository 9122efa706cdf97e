"""``event``: matching events within max_event_age of as_of, not yet considered."""

from __future__ import annotations

from journeys.context import JourneyRun
from journeys.events import matching_events_sql
from journeys.triggers.kind import TriggerEngine, TriggerView, never_lost
from nudge.core.dsl.spec import EventTrigger


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
