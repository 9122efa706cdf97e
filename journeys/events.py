"""SQL selecting the events an event trigger matches: its name, then every ``where`` item.

The ``where`` items are compiled by the segment compiler, so they follow exactly the rules of a
``performed`` condition's ``where``. The trick: the compiler is handed relations in which each
candidate event is its own "user" (``user_id`` := ``message_id``), so the ids it returns are the
message ids of the matching events.
"""

from __future__ import annotations

from dataclasses import replace

from journeys.context import JourneyRun
from journeys.sqltext import sql_string
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
