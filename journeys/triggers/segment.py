"""``segment_entered`` / ``segment_exited``: the membership history rows this run first saw."""

from __future__ import annotations

from journeys.context import JourneyRun
from journeys.sqltext import sql_string
from journeys.triggers.kind import TriggerEngine, TriggerView
from nudge.core.dsl.spec import InSegment, SegmentEntered, SegmentExited


def _changes(run: JourneyRun, segment: str, column: str, label: str) -> None:
    """History rows whose change this very run first saw (their ``column`` equals as_of)."""
    key = f"{label}:{segment}:{run.as_of.isoformat()}"
    run.execute(
        f"""insert into _nj_candidates
            select distinct user_id, ?, {column}
            from marts.fct_segment_membership_history
            where segment = ? and {column} = ?""",
        [key, segment, run.as_of],
    )


def fill_entered(run: JourneyRun, trigger: SegmentEntered) -> None:
    _changes(run, trigger.segment, "entered_at", "segment_entered")


def fill_exited(run: JourneyRun, trigger: SegmentExited) -> None:
    _changes(run, trigger.segment, "exited_at", "segment_exited")


def _members(segment: str) -> str:
    return (
        f"select user_id from marts.fct_segment_memberships where segment = {sql_string(segment)}"
    )


def lost_entered(trigger: SegmentEntered) -> str:
    """The user is no longer in the segment."""
    return f"e.user_id not in ({_members(trigger.segment)})"


def lost_exited(trigger: SegmentExited) -> str:
    """The user is back in the segment."""
    return f"e.user_id in ({_members(trigger.segment)})"


def why_not_entered(view: TriggerView, trigger: SegmentEntered, words: str) -> str:
    member = view.holds(InSegment(trigger.segment))
    return f"{words}: the user is {'' if member else 'not '}in {trigger.segment}"


def why_not_exited(view: TriggerView, trigger: SegmentExited, words: str) -> str:
    member = view.holds(InSegment(trigger.segment))
    return f"{words}: the user is {'still ' if member else 'not '}in {trigger.segment}"


ENTERED = TriggerEngine(SegmentEntered, fill_entered, lost_entered, why_not_entered)
EXITED = TriggerEngine(SegmentExited, fill_exited, lost_exited, why_not_exited)
