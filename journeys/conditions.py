"""Conditions evaluated once per run: each becomes a temp table of the user ids it holds for.

Within one engine run the warehouse the conditions read (marts, segments, ledger) does not change,
so a condition used at several places (branch, goal, step ``if``) is evaluated once.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from nudge.dsl.models import Condition, Topic
from nudge.segments.compiler import compile_condition, warehouse_relations


class ConditionTables:
    """Materialises conditions as temp tables ``_nj_cond_<n>(user_id)`` on first use."""

    def __init__(
        self, con: duckdb.DuckDBPyConnection, as_of: datetime, topics: tuple[Topic, ...]
    ) -> None:
        self._con = con
        self.relations = warehouse_relations(as_of)
        self._topics = topics
        self._tables: dict[str, str] = {}

    def table(self, condition: Condition) -> str:
        """The name of a temp table holding the distinct user ids for which ``condition`` holds."""
        key = repr(condition)
        name = self._tables.get(key)
        if name is None:
            name = f"_nj_cond_{len(self._tables)}"
            sql = compile_condition(condition, self.relations, topics=self._topics)
            self._con.execute(
                f"create or replace temp table {name} as select distinct user_id from ({sql})"
            )
            self._tables[key] = name
        return name

    def drop(self) -> None:
        for name in self._tables.values():
            self._con.execute(f"drop table if exists {name}")
        self._tables.clear()
