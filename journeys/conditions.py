"""Conditions evaluated once per run and user, for the users a stage asks about.

Within one engine run the warehouse the conditions read (marts, segments, ledger) does not change,
so a condition used at several places (branch, goal, step ``if``, several journeys) is evaluated
at most once per user. It is evaluated only for the users of a *scope*: the people a stage is
deciding about (a trigger's candidates, a journey's active entries), never the whole population,
so the cost follows the people in journeys and the change, not the number of users.

This is exact because every condition the segment compiler returns is a per-user predicate over
the users relation (each row of ``u`` is tested on its own), so restricting that relation to some
users gives the same verdict for each of them.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import duckdb

from nudge.dsl.models import All, Condition, Topic
from nudge.segments.compiler import compile_condition, warehouse_relations


class ConditionTables:
    """Keeps one verdict table ``_nj_cond_<n>(user_id, holds)`` per condition, filled on demand."""

    def __init__(
        self, con: duckdb.DuckDBPyConnection, as_of: datetime, topics: tuple[Topic, ...]
    ) -> None:
        self._con = con
        self.relations = warehouse_relations(as_of)
        self._topics = topics
        self._tables: dict[str, str] = {}

    def holding(self, condition: Condition, scope: str) -> str:
        """SQL selecting the ``user_id`` of the users for whom ``condition`` holds, exact for every
        user of ``scope`` (a query or table with a ``user_id`` column); ask only about those.

        The parts of an ``all`` are evaluated in the order written, each only for the users the
        parts before it hold for (an ``in_segment`` first keeps a costly part to few users).
        """
        if isinstance(condition, All) and condition.conditions:
            parts = []
            for part in condition.conditions:
                parts.append(self.holding(part, scope))
                scope = f"select user_id from ({scope}) where user_id in ({parts[-1]})"
            return " intersect ".join(f"({part})" for part in parts)
        key = repr(condition)
        name = self._tables.get(key)
        if name is None:
            name = f"_nj_cond_{len(self._tables)}"
            self._con.execute(
                f"create or replace temp table {name} (user_id varchar, holds boolean)"
            )
            self._tables[key] = name
        self._evaluate(condition, name, scope)
        return f"select user_id from {name} where holds"

    def _evaluate(self, condition: Condition, name: str, scope: str) -> None:
        """Add the verdicts of the users of ``scope`` not judged yet (deleted users: false)."""
        users = "(select * from marts.dim_users where user_id in (select user_id from _nj_new))"
        relations = replace(self.relations, users=users)
        sql = compile_condition(condition, relations, topics=self._topics)
        self._con.execute(
            f"""insert into {name}
                with _nj_new as materialized (
                    select distinct user_id from ({scope}) where user_id is not null
                    except select user_id from {name}
                )
                select n.user_id, n.user_id in (select user_id from ({sql}))
                from _nj_new n"""
        )

    def drop(self) -> None:
        for name in self._tables.values():
            self._con.execute(f"drop table if exists {name}")
        self._tables.clear()
