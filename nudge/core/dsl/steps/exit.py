"""``exit``: leave the journey."""

from __future__ import annotations

from typing import Any

from nudge.core.dsl.reader import Reader
from nudge.core.dsl.spec import Exit
from nudge.core.dsl.steps.kind import ParseSteps, StepKind


def parse(r: Reader, value: Any, path: str, _: ParseSteps) -> Exit | None:
    return None if r.true(value, path) is None else Exit()


def words(_: Exit) -> str:
    return "leaves the journey"


KIND = StepKind("exit", Exit, parse, words)
