"""``attribute_changed``: a user's trait takes a new value (optionally a given one)."""

from __future__ import annotations

import json
from typing import Any

from nudge.core.dsl.reader import Reader, sub
from nudge.core.dsl.spec import AttributeChanged
from nudge.core.dsl.triggers.kind import TriggerKind


def parse(r: Reader, value: Any, path: str) -> AttributeChanged | None:
    data = r.mapping(value, path, required=("name",), optional=("to",))
    if data is None:
        return None
    name = r.string(data["name"], sub(path, "name"))
    return None if name is None else AttributeChanged(name, data.get("to"), "to" in data)


def words(trigger: AttributeChanged) -> str:
    to = f" to {json.dumps(trigger.to, default=str)}" if trigger.has_to else ""
    return f"trait {trigger.name} changing{to}"


KIND = TriggerKind("attribute_changed", AttributeChanged, parse, words)
