"""``branch``: go on with ``then`` or ``else`` steps depending on a condition."""

from __future__ import annotations

from typing import Any

from nudge.core.dsl.conditions import parse_condition
from nudge.core.dsl.reader import Reader, sub
from nudge.core.dsl.spec import Branch, Condition, Step
from nudge.core.dsl.steps.kind import ParseSteps, StepKind
from nudge.core.dsl.words import condition_words


def parse(r: Reader, value: Any, path: str, parse_steps: ParseSteps) -> Branch | None:
    data = r.mapping(value, path, required=("if",), optional=("then", "else"))
    if data is None:
        return None
    condition = parse_condition(r, data["if"], sub(path, "if"))
    then = parse_steps(r, data.get("then", []), sub(path, "then"))
    otherwise = parse_steps(r, data.get("else", []), sub(path, "else"))
    if then is None or otherwise is None:
        return None
    # Best effort (see parse_journey): a bad condition still lets the nested steps be checked.
    return Branch(condition, then, otherwise)  # type: ignore[arg-type]


def words(branch: Branch) -> str:
    return f"branches on whether {condition_words(branch.condition)}"


def nested(branch: Branch) -> tuple[tuple[str, tuple[Step, ...]], ...]:
    """``then`` first, then ``else``: the program's order, and the targets' order."""
    return ((".then", branch.then), (".else", branch.otherwise))


def conditions(branch: Branch) -> tuple[tuple[str, Condition], ...]:
    return ((".if", branch.condition),)


KIND = StepKind("branch", Branch, parse, words, nested=nested, conditions=conditions)
