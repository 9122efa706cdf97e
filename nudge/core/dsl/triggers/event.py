"""``event``: a user performs an event (optionally with ``where`` items on its properties)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from nudge.core.dsl.conditions import parse_where
from nudge.core.dsl.reader import Reader, sub
from nudge.core.dsl.spec import EventTrigger, TriggerRef
from nudge.core.dsl.triggers.kind import TriggerKind
from nudge.core.dsl.words import where_words


def parse(r: Reader, value: Any, path: str) -> EventTrigger | None:
    if isinstance(value, str):  # shorthand: `event: order_completed`
        return EventTrigger(value)
    data = r.mapping(value, path, required=("name",), optional=("where",))
    if data is None:
        return None
    name = r.string(data["name"], sub(path, "name"))
    where = parse_where(r, data["where"], sub(path, "where")) if "where" in data else ()
    return None if name is None or where is None else EventTrigger(name, where)


def words(trigger: EventTrigger) -> str:
    return f"performing event {trigger.name}{where_words(trigger.where)}"


def problems(trigger: EventTrigger) -> Iterator[tuple[str, str]]:
    for i, item in enumerate(trigger.where):
        if isinstance(item.comparison.value, TriggerRef):
            yield (
                f".where[{i}].{item.comparison.op}",
                "{trigger: ...} is for conditions evaluated inside the journey (exit_when, goal, "
                "wait_until, branch, step if, entry_filter); the trigger's own where compares "
                "with literal values",
            )


KIND = TriggerKind("event", EventTrigger, parse, words, carries_event=True, problems=problems)
