"""Who a journey's trigger fires for in this run.

Each trigger fills the temp table ``_nj_candidates(user_id, trigger_key, trigger_at)`` (one row per
firing; ``trigger_key`` makes the entry id stable) and lists the trigger keys it consumed in
``_nj_considered(message_id)``: event message ids (of events within the journey's max_event_age),
a date trigger's user and trait value, and a broadcast's key are considered once per journey,
whether or not they start an entry, and are recorded in ``nudge.journey_trigger_events``.
"""

from __future__ import annotations

from journeys.context import JourneyRun
from journeys.triggers.registry import trigger_engine


def fill_candidates(run: JourneyRun) -> None:
    run.execute(
        "create or replace temp table _nj_candidates "
        "(user_id varchar, trigger_key varchar, trigger_at timestamp)"
    )
    run.execute("create or replace temp table _nj_considered (message_id varchar)")
    trigger = run.journey.trigger
    trigger_engine(trigger).fill(run, trigger)
