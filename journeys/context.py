"""What every stage of one journey's run needs: the connection, the journey and the run's instant."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb

from journeys.conditions import ConditionTables
from journeys.program import Program
from journeys.sqltext import sql_string
from nudge.dsl.models import Journey


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

    def active_at(self, step_id: str) -> str:
        """SQL predicate on ``e`` (journey_entries): active in this journey at ``step_id``."""
        return (
            f"e.journey = {sql_string(self.journey.name)} and e.status = 'active' "
            f"and e.current_step = {sql_string(step_id)}"
        )

    def execute(self, sql: str, params: list[Any] | None = None) -> duckdb.DuckDBPyConnection:
        return self.con.execute(sql, params or [])

    def scalar(self, sql: str, params: list[Any] | None = None) -> Any:
        row = self.con.execute(sql, params or []).fetchone()
        return row[0] if row else None
