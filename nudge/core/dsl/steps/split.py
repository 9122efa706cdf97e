"""``split``: send each user down one of several paths by a stable random bucket."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from nudge.core.dsl.reader import Reader, sub
from nudge.core.dsl.spec import Split, SplitPath, Step
from nudge.core.dsl.steps.kind import ParseSteps, StepKind

if TYPE_CHECKING:
    from nudge.core.dsl.checks import KnownNames


def parse(r: Reader, value: Any, path: str, parse_steps: ParseSteps) -> Split | None:
    items = r.list_of(value, path, "paths {percent, steps}")
    if items is None:
        return None
    if not items:
        r.problem(path, "expected at least one path {percent, steps}; got an empty list")
        return None
    paths: list[SplitPath | None] = []
    for i, item in enumerate(items):
        at = sub(path, i)
        data = r.mapping(item, at, required=("percent", "steps"))
        if data is None:
            paths.append(None)
            continue
        percent = r.number(data["percent"], sub(at, "percent"), low=0, high=100)
        steps = parse_steps(r, data["steps"], sub(at, "steps"))
        paths.append(None if percent is None or steps is None else SplitPath(percent, steps))
    if any(p is None for p in paths):
        return None
    return Split(tuple(p for p in paths if p is not None))


def words(split: Split) -> str:
    return "splits users " + " / ".join(f"{p.percent:g}%" for p in split.paths)


def nested(split: Split) -> tuple[tuple[str, tuple[Step, ...]], ...]:
    return tuple((f"[{i}].steps", path.steps) for i, path in enumerate(split.paths))


def problems(split: Split, _: KnownNames) -> Iterator[tuple[str, str]]:
    total = sum(p.percent for p in split.paths)
    if abs(total - 100) > 1e-9:
        shares = " + ".join(f"{p.percent:g}" for p in split.paths)
        yield "", f"split percents must add up to 100; they add up to {shares} = {total:g}"


KIND = StepKind("split", Split, parse, words, nested=nested, problems=problems)
