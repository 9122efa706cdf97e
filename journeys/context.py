"""What every stage of one journey's run needs: the connection, the journey and the run's instant."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb

from journeys.condition_cache import ENTRY_SCOPE_COLUMNS, ConditionTables, entry_scoped
from journeys.program import Program
from journeys.sqltext import sql_string
from nudge.core.dsl.spec import Condition, Journey
from nudge.core.dsl.triggers.registry import trigger_kind


@dataclass
class JourneyRun:
    con: duckdb.DuckDBPyConnection
    journey: Journey
    program: Program
    as_of: datetime
    run_id: str
    version: str
    conditions: ConditionTables
    counts: Counter[str] = field(default_factory=Counter)  # moves made, by action
    arrivals: set[str] = field(default_factory=set)  # steps people moved to, not visited since
    last_seq: int | None = None  # journey_transitions.seq of the last row written, once read

    def active_at(self, step_id: str) -> str:
        """SQL predicate on ``e`` (journey_entries): active in this journey at ``step_id``."""
        return (
            f"e.journey = {sql_string(self.journey.name)} and e.status = 'active' "
            f"and e.current_step = {sql_string(step_id)}"
        )

    def active_users(self) -> str:
        """SQL selecting the users with an active entry in this journey."""
        return (
            "select e.user_id from nudge.journey_entries e "
            f"where e.journey = {sql_string(self.journey.name)} and e.status = 'active'"
        )

    def active_entries(self, where: str = "e.status = 'active'") -> str:
        """SQL selecting the entries of this journey satisfying ``where`` (a predicate on ``e``),
        with the columns a scoped condition needs (``journeys.condition_cache.ENTRY_SCOPE_COLUMNS``)."""
        return (
            f"select {ENTRY_SCOPE_COLUMNS} from nudge.journey_entries e "
            f"where e.journey = {sql_string(self.journey.name)} and {where}"
        )

    def active_count(self) -> int:
        return self.scalar(f"select count(*) from ({self.active_users()})")

    def holds(self, condition: Condition, scope: str) -> str:
        """SQL predicate on ``e``: ``condition`` holds for ``e.user_id``, who is among ``scope``."""
        return f"e.user_id in ({self.conditions.holding(condition, scope)})"

    def entry_holds(self, condition: Condition, entries: str) -> str:
        """SQL predicate on ``e``: ``condition`` holds for the entry ``e``, which is among
        ``entries`` (SQL with ``ENTRY_SCOPE_COLUMNS``): judged per entry when the condition is
        scoped to it (``since``, ``{trigger: ...}``), else per user as ``holds`` does."""
        if not entry_scoped(condition):
            return self.holds(condition, f"select user_id from ({entries})")
        event_trigger = trigger_kind(self.journey.trigger).carries_event
        return (
            f"e.entry_id in ({self.conditions.holding_entries(condition, entries, event_trigger)})"
        )

    def execute(self, sql: str, params: list[Any] | None = None) -> duckdb.DuckDBPyConnection:
        return self.con.execute(sql, params or [])

    def scalar(self, sql: str, params: list[Any] | None = None) -> Any:
        row = self.con.execute(sql, params or []).fetchone()
        return row[0] if row else None
