"""``update_attribute``: set a trait of the user (as an identify call)."""

from __future__ import annotations

import json
from typing import Any

from nudge.core.dsl.reader import Reader, sub
from nudge.core.dsl.spec import UpdateAttribute
from nudge.core.dsl.steps.kind import ParseSteps, StepKind


def parse(r: Reader, value: Any, path: str, _: ParseSteps) -> UpdateAttribute | None:
    data = r.mapping(value, path, required=("name", "value"))
    if data is None:
        return None
    name = r.string(data["name"], sub(path, "name"))
    return None if name is None else UpdateAttribute(name, data["value"])


def words(update: UpdateAttribute) -> str:
    return f"sets trait {update.name} to {json.dumps(update.value, default=str)}"


KIND = StepKind("update_attribute", UpdateAttribute, parse, words)
