"""Conditions evaluated once per run and user, for the users a stage asks about.

Within one engine run the warehouse the conditions read (marts, segments, ledger) does not change,
so a condition used at several places (branch, goal, step ``if``, several journeys) is evaluated
at most once per user. It is evaluated only for the users of a *scope*: the people a stage is
deciding about (a trigger's candidates, a journey's active entries), never the whole population,
so the cost follows the people in journeys and the change, not the number of users.

This is exact because every condition the segment compiler returns is a per-user predicate over
the users relation (each row of ``u`` is tested on its own), so restricting that relation to some
users gives the same verdict for each of them.

Conditions scoped to the entry (``performed`` with ``since`` or a ``{trigger: ...}`` operand) are
judged per *entry* instead (``holding_entries``): the users relation becomes the entries being
decided about, each with its trigger event, entry start and step reached (the columns of
``nudge.core.segments.compiler.compile_entry_condition``). Their verdicts depend on the entry and on
the step it is at, so they are not kept across stages: each call judges its entries afresh, in
one set-based query. The unscoped parts of an ``all`` still use the per-user verdicts.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import duckdb

from nudge.core.dsl.spec import All, Condition, Performed, Topic
from nudge.core.dsl.walk import iter_conditions
from nudge.core.segments.compiler import (
    compile_condition,
    compile_entry_condition,
    warehouse_relations,
)

# Columns an entries scope must have (``holding_entries``).
ENTRY_SCOPE_COLUMNS = "entry_id, user_id, trigger_key, started_at, step_reached_at"


def entry_scoped(condition: Condition) -> bool:
    """Whether ``condition`` depends on the journey entry it is judged for."""
    return any(
        isinstance(part, Performed) and part.entry_scoped for part in iter_conditions(condition)
    )


def entry_context_sql(entries: str, event_trigger: bool) -> str:
    """The users relation of ``compile_entry_condition``: one row per entry of ``entries`` (SQL
    with ``ENTRY_SCOPE_COLUMNS``) with its user's columns, for known users only. With an event
    trigger, ``trigger_key`` is the triggering event's message id."""
    if event_trigger:
        trigger = """left join marts.fct_events t on t.message_id = s.trigger_key"""
        trigger_at, properties = "coalesce(t.timestamp, s.started_at)", "t.properties"
    else:
        trigger, trigger_at, properties = "", "s.started_at", "cast(null as json)"
    return f"""(select u.*, s.entry_id, {trigger_at} as entry_trigger_at,
                   s.started_at as entry_started_at, s.step_reached_at as entry_step_reached_at,
                   {properties} as entry_trigger_properties
            from ({entries}) s join marts.dim_users u on u.user_id = s.user_id {trigger})"""


class ConditionTables:
    """Keeps one verdict table ``_nj_cond_<n>(user_id, holds)`` per condition, filled on demand."""

    def __init__(
        self, con: duckdb.DuckDBPyConnection, as_of: datetime, topics: tuple[Topic, ...]
    ) -> None:
        self._con = con
        self.relations = warehouse_relations(as_of)
        self._topics = topics
        self._tables: dict[str, str] = {}
        self._entry_tables: list[str] = []

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

    def holding_entries(self, condition: Condition, entries: str, event_trigger: bool) -> str:
        """SQL selecting the ``entry_id`` of the entries of ``entries`` (SQL with
        ``ENTRY_SCOPE_COLUMNS``) for which ``condition`` holds; ``event_trigger``: the journey's
        trigger is an event (``trigger_key`` is its message id).

        Unscoped conditions are judged per user (``holding``, kept for the run); an ``all`` is
        judged part by part as there, each part only for the entries the earlier parts hold for.
        """
        if not entry_scoped(condition):
            users = self.holding(condition, f"select user_id from ({entries})")
            return f"select entry_id from ({entries}) where user_id in ({users})"
        if isinstance(condition, All) and condition.conditions:
            parts = []
            for part in condition.conditions:
                parts.append(self.holding_entries(part, entries, event_trigger))
                entries = f"select * from ({entries}) where entry_id in ({parts[-1]})"
            return " intersect ".join(f"({part})" for part in parts)
        name = f"_nj_entry_cond_{len(self._entry_tables)}"
        relations = replace(self.relations, users=entry_context_sql(entries, event_trigger))
        sql = compile_entry_condition(condition, relations, topics=self._topics)
        self._con.execute(f"create or replace temp table {name} as {sql}")
        self._entry_tables.append(name)
        return f"select entry_id from {name}"

    def drop(self) -> None:
        for name in [*self._tables.values(), *self._entry_tables]:
            self._con.execute(f"drop table if exists {name}")
        self._tables.clear()
        self._entry_tables.clear()
