"""``wait_until``: stay at the step until a condition holds or a timeout passes."""

from __future__ import annotations

from typing import Any

from nudge.core.dsl.conditions import parse_condition
from nudge.core.dsl.durations import format_duration
from nudge.core.dsl.reader import Reader, sub
from nudge.core.dsl.spec import Condition, WaitUntil
from nudge.core.dsl.steps.kind import ParseSteps, StepKind
from nudge.core.dsl.words import condition_words


def parse(r: Reader, value: Any, path: str, _: ParseSteps) -> WaitUntil | None:
    data = r.mapping(value, path, required=("condition", "timeout"), optional=("on_timeout",))
    if data is None:
        return None
    condition = parse_condition(r, data["condition"], sub(path, "condition"))
    timeout = r.duration(data["timeout"], sub(path, "timeout"))
    on_timeout = data.get("on_timeout", "exit")
    on_timeout = r.choice(on_timeout, sub(path, "on_timeout"), ("exit", "continue"), "on_timeout")
    if condition is None or timeout is None or on_timeout is None:
        return None
    return WaitUntil(condition, timeout, on_timeout)  # type: ignore[arg-type]


def words(wait: WaitUntil) -> str:
    then = "exits" if wait.on_timeout == "exit" else "continues"
    return (
        f"waits until {condition_words(wait.condition)}; "
        f"after {format_duration(wait.timeout)} it {then}"
    )


def conditions(wait: WaitUntil) -> tuple[tuple[str, Condition], ...]:
    return ((".condition", wait.condition),)


KIND = StepKind("wait_until", WaitUntil, parse, words, conditions=conditions)
