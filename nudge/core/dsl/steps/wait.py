"""``wait``: stay at the step for a duration."""

from __future__ import annotations

from typing import Any

from nudge.core.dsl.durations import format_duration
from nudge.core.dsl.reader import Reader
from nudge.core.dsl.spec import Wait
from nudge.core.dsl.steps.kind import ParseSteps, StepKind


def parse(r: Reader, value: Any, path: str, _: ParseSteps) -> Wait | None:
    duration = r.duration(value, path)
    return None if duration is None else Wait(duration)


def words(wait: Wait) -> str:
    return f"waits {format_duration(wait.duration)}"


KIND = StepKind("wait", Wait, parse, words)
