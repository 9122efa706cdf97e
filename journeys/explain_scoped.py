"""``nudge explain --journey``: the conditions scoped to an entry, as that entry sees them.

For each condition of the journey that uses ``performed ... since`` or a ``{trigger: ...}``
operand (``docs/journeys-keyed.md``), the lines show where it is used, whether it holds
for the entry now, and for each scoped ``performed``: the boundary ``since`` counts from, the
``where`` items with the trigger's values filled in, and the events that counted. The queries are
the engine's own (``journeys.condition_cache.entry_context_sql`` and the segment compiler), so what
is shown is what the next run decides.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from typing import Any

import duckdb

from journeys.condition_cache import ENTRY_SCOPE_COLUMNS, entry_context_sql, entry_scoped
from journeys.sqltext import sql_string
from nudge.core.dsl import spec as m
from nudge.core.dsl.durations import format_duration
from nudge.core.dsl.triggers.registry import trigger_kind
from nudge.core.dsl.walk import iter_conditions, journey_conditions_by_step
from nudge.core.segments.compiler import (
    Relations,
    compile_counted_events,
    compile_entry_condition,
    warehouse_relations,
)

_SINCE_TEXT = {
    "trigger": "strictly after the trigger",
    "entry": "at or after the entry start",
    "step": "at or after reaching the current step",
}
_LISTED = 10  # counted events listed per condition before the list is cut short


def scoped_condition_lines(
    con: duckdb.DuckDBPyConnection,
    content: m.Content,
    journey: m.Journey,
    entry_id: str,
    current_step: str | None,
    as_of: datetime,
) -> list[str]:
    """The explanation lines for the scoped conditions of ``journey`` for ``entry_id``: those of
    the journey itself, and those of the step the entry is at (``current_step``)."""
    scoped = [
        (path, c)
        for path, step, c in journey_conditions_by_step(journey)
        if entry_scoped(c) and (step is None or step.id == current_step)
    ]
    if not scoped:
        return []
    event_trigger = trigger_kind(journey.trigger).carries_event
    entries = (
        f"select {ENTRY_SCOPE_COLUMNS} from nudge.journey_entries "
        f"where entry_id = {sql_string(entry_id)}"
    )
    relations = replace(warehouse_relations(as_of), users=entry_context_sql(entries, event_trigger))
    row = con.execute(
        f"""select entry_trigger_at, entry_started_at, entry_step_reached_at,
                   entry_trigger_properties
            from {relations.users} c"""
    ).fetchone()
    if row is None:
        return ["conditions scoped to the entry: not judged (the user is no longer known)"]
    trigger_at, started_at, reached_at, properties = row
    trigger = json.loads(properties) if properties else {}
    boundaries = {"trigger": trigger_at, "entry": started_at, "step": reached_at}
    lines = ["conditions scoped to the entry (trigger values filled in):"]
    for path, condition in scoped:
        sql = compile_entry_condition(condition, relations, topics=content.topics)
        holds = bool(con.execute(f"select 1 from ({sql}) h").fetchall())
        lines.append(f"  {path}: {'holds' if holds else 'does not hold'}")
        for part in iter_conditions(condition):
            if isinstance(part, m.Performed) and part.entry_scoped:
                lines += _performed_lines(con, part, relations, trigger, boundaries)
    return lines


def _performed_lines(
    con: duckdb.DuckDBPyConnection,
    performed: m.Performed,
    relations: Relations,
    trigger: dict[str, Any],
    boundaries: dict[str, datetime],
) -> list[str]:
    text = f"performed {performed.event}"
    if performed.times != m.Comparison("gte", 1):
        text += f" times {performed.times.op} {performed.times.value}"
    if performed.since is not None:
        text += f", {_SINCE_TEXT[performed.since]} ({boundaries[performed.since]})"
    if performed.within is not None:
        text += f", within {format_duration(performed.within)}"
    for item in performed.where:
        text += f", {'.'.join(item.path)} {item.comparison.op} {_operand(item.comparison.value, trigger)}"
    counted = con.execute(
        f"select message_id, timestamp, properties from ({compile_counted_events(performed, relations)}) c "
        "order by timestamp, message_id"
    ).fetchall()
    lines = [
        f"    {text}",
        f"      counted: {len(counted)} event{'' if len(counted) == 1 else 's'}",
    ]
    for message_id, timestamp, properties in counted[:_LISTED]:
        lines.append(f"        {timestamp} {message_id} {properties}")
    if len(counted) > _LISTED:
        lines.append(f"        ... {len(counted) - _LISTED} more")
    return lines


def _operand(value: Any, trigger: dict[str, Any]) -> str:
    """A where operand as written, a ``{trigger: ...}`` one with the trigger's value filled in."""
    if not isinstance(value, m.TriggerRef):
        return json.dumps(value, default=str)
    found: Any = trigger
    for part in value.path:
        if isinstance(found, dict) and part in found:
            found = found[part]
        elif isinstance(found, list) and part.isdigit() and int(part) < len(found):
            found = found[int(part)]
        else:
            return f"<missing> ({value}: missing, so this item never matches)"
    return f"{json.dumps(found)} ({value})"
