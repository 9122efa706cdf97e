"""``split``: paths take consecutive ranges of a stable 0..99 bucket of (journey.step, user)."""

from __future__ import annotations

from journeys.context import JourneyRun
from journeys.program import Instruction
from journeys.steps.at_step import holds_at, move_all
from journeys.steps.kind import StepEngine
from nudge.core.dsl.spec import All, Not, RandomBucket, Split


def _ranges(ins: Instruction) -> list[tuple[float, float, str | None]]:
    """``(low, high, first step)`` per path: users whose bucket is in ``[low, high)`` take it."""
    split = ins.step.action
    assert isinstance(split, Split)
    ranges, low = [], 0.0
    for path, target in zip(split.paths, ins.targets, strict=True):
        ranges.append((low, low + path.percent, target))
        low += path.percent
    return ranges


def advance(run: JourneyRun, ins: Instruction) -> None:
    salt = f"{run.journey.name}.{ins.id}"
    for number, (low, high, target) in enumerate(_ranges(ins), start=1):
        in_range = All((RandomBucket(high, salt), Not(RandomBucket(low, salt))))
        move_all(run, ins, target, "split", f"'path {number}'", holds_at(run, ins, in_range))
    move_all(run, ins, ins.next_id, "split", "'no path'")


def onward(ins: Instruction) -> tuple[tuple[str, str | None], ...]:
    return tuple((f"{low:g}-{high:g}%", target) for low, high, target in _ranges(ins))


ENGINE = StepEngine(Split, advance, onward=onward)
