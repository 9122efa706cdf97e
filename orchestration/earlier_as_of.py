"""The refusal of a run at an instant before the last succeeded run (raised by
``orchestration.stages.refuse_earlier_as_of``); light to import, for the command line."""

from __future__ import annotations

from datetime import datetime


class EarlierThanLastRun(ValueError):
    """A run asked for at an instant before the last run that succeeded: refused, since segment
    history and journey state only move forward."""

    def __init__(self, as_of: datetime, latest: datetime) -> None:
        self.as_of = as_of
        self.latest = latest
        super().__init__(
            f"as_of {as_of.isoformat()}Z is earlier than the last run ({latest.isoformat()}Z):"
            " a workspace's history only moves forward. Run at that instant or later (without"
            " --as-of: now), or replay the past in a fresh workspace (--home DIR)."
        )
