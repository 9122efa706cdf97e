"""A journey's step tree flattened into a program: one instruction per step, with its targets.

Instructions are listed in pre-order (a branch, then its ``then`` steps, then its ``else`` steps,
then what follows the branch), so every move goes forward in the list: one sweep over the program
in order moves each person as far as they can go in this run.
"""

from __future__ import annotations

from dataclasses import dataclass

from nudge.core.dsl.spec import (
    Branch,
    Exit,
    Journey,
    Send,
    Split,
    Step,
    UpdateAttribute,
    Wait,
    WaitUntil,
    Window,
)

KINDS: dict[type, str] = {
    Send: "send",
    Wait: "wait",
    WaitUntil: "wait_until",
    Window: "window",
    Branch: "branch",
    Split: "split",
    UpdateAttribute: "update_attribute",
    Exit: "exit",
}


@dataclass(frozen=True)
class SplitTarget:
    """Users whose bucket falls in ``[low, high)`` go to ``target`` (None: the journey ends)."""

    low: float
    high: float
    target: str | None


@dataclass(frozen=True)
class Instruction:
    """One step of the program. ``next_id`` None means: after this step the journey completes."""

    step: Step
    kind: str
    next_id: str | None
    then_id: str | None = None  # branch: first step of `then` (or next_id when empty)
    else_id: str | None = None  # branch: first step of `else` (or next_id when empty)
    split: tuple[SplitTarget, ...] = ()

    @property
    def id(self) -> str:
        return self.step.id


@dataclass(frozen=True)
class Program:
    instructions: tuple[Instruction, ...]

    @property
    def first_id(self) -> str | None:
        return self.instructions[0].id if self.instructions else None

    @property
    def step_ids(self) -> tuple[str, ...]:
        return tuple(i.id for i in self.instructions)


def compile_program(journey: Journey) -> Program:
    """Flatten ``journey.steps``; raise ``ValueError`` naming the journey on a duplicate step id."""
    out: list[Instruction] = []
    _flatten(journey.steps, None, out)
    seen: set[str] = set()
    for ins in out:
        if ins.id in seen:
            raise ValueError(f"journey {journey.name!r}: step id {ins.id!r} is used more than once")
        seen.add(ins.id)
    return Program(tuple(out))


def _first(steps: tuple[Step, ...], fallback: str | None) -> str | None:
    return steps[0].id if steps else fallback


def _flatten(steps: tuple[Step, ...], after: str | None, out: list[Instruction]) -> None:
    for index, step in enumerate(steps):
        next_id = steps[index + 1].id if index + 1 < len(steps) else after
        action = step.action
        kind = KINDS[type(action)]
        if isinstance(action, Branch):
            out.append(
                Instruction(
                    step,
                    kind,
                    next_id,
                    then_id=_first(action.then, next_id),
                    else_id=_first(action.otherwise, next_id),
                )
            )
            _flatten(action.then, next_id, out)
            _flatten(action.otherwise, next_id, out)
        elif isinstance(action, Split):
            targets, low = [], 0.0
            for path in action.paths:
                targets.append(SplitTarget(low, low + path.percent, _first(path.steps, next_id)))
                low += path.percent
            out.append(Instruction(step, kind, next_id, split=tuple(targets)))
            for path in action.paths:
                _flatten(path.steps, next_id, out)
        else:
            out.append(Instruction(step, kind, next_id))
