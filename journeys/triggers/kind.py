"""What the engine needs to know about a trigger kind: who it fires for in a run, when an entry
has lost it, and what ``nudge explain --journey`` says to someone it has not started."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from journeys.context import JourneyRun
from nudge.core.dsl.spec import Condition


class TriggerView(Protocol):
    """What a kind may ask of the explanation it is part of (``journeys.explain``)."""

    user_id: str

    def holds(self, condition: Condition) -> bool:
        """Whether ``condition`` holds for the user now."""
        ...

    def row(self, sql: str, params: list[object]) -> tuple | None:
        """One row of a read-only query over the warehouse (None when the marts are missing)."""
        ...


def never_lost(trigger: Any) -> str | None:
    return None


def not_started(view: TriggerView, trigger: Any, words: str) -> str:
    return f"{words} has not started an entry for this user"


@dataclass(frozen=True)
class TriggerEngine:
    spec: type
    # Fill _nj_candidates(user_id, trigger_key, trigger_at) with this run's firings and
    # _nj_considered(message_id) with the trigger keys consumed (journeys.triggers.candidates).
    fill: Callable[[JourneyRun, Any], None]
    # For exit_on_trigger_lost: SQL predicate on ``e`` (an active entry) true when what fired
    # no longer holds; None when the kind has no such notion.
    lost: Callable[[Any], str | None] = never_lost
    # For someone who never entered: what the trigger says about them (words: the trigger in
    # words, from its syntax side).
    why_not: Callable[[TriggerView, Any, str], str] = not_started
