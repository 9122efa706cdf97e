"""``broadcast``: every member of the segment, once."""

from __future__ import annotations

from journeys.context import JourneyRun
from journeys.triggers.kind import TriggerEngine, TriggerView, never_lost
from nudge.core.clock import to_utc_naive
from nudge.core.dsl.spec import Broadcast, InSegment


def fill(run: JourneyRun, trigger: Broadcast) -> None:
    """Every member of the segment, once, at the first run with as_of >= at."""
    if trigger.at is not None and run.as_of < to_utc_naive(trigger.at):
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


def why_not(view: TriggerView, trigger: Broadcast, words: str) -> str:
    member = view.holds(InSegment(trigger.segment))
    return f"{words}: the user is {'' if member else 'not '}in {trigger.segment}"


ENGINE = TriggerEngine(Broadcast, fill, never_lost, why_not)
