"""A journey's step tree flattened into a program: one instruction per step, with its targets.

Instructions are listed in pre-order (a step, then the steps nested in it in the order its kind
lists them, e.g. a branch's ``then`` then its ``else``, then what follows), so every move goes
forward in the list: one sweep over the program in order moves each person as far as they can
go in this run. What a kind nests comes from its registration (``nudge.core.dsl.steps``).
"""

from __future__ import annotations

from dataclasses import dataclass

from nudge.core.dsl.spec import Journey, Step
from nudge.core.dsl.steps.registry import step_kind


@dataclass(frozen=True)
class Instruction:
    """One step of the program. ``next_id`` None means: after this step the journey completes.

    ``targets`` holds, for each step list nested in the step (a branch's ``then`` and ``else``, a
    split's paths), its first step, or ``next_id`` when the list is empty."""

    step: Step
    kind: str
    next_id: str | None
    targets: tuple[str | None, ...] = ()

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


def _flatten(steps: tuple[Step, ...], after: str | None, out: list[Instruction]) -> None:
    for index, step in enumerate(steps):
        next_id = steps[index + 1].id if index + 1 < len(steps) else after
        kind = step_kind(step.action)
        nested = [inner for _, inner in kind.nested(step.action)]
        targets = tuple(inner[0].id if inner else next_id for inner in nested)
        out.append(Instruction(step, kind.key, next_id, targets))
        for inner in nested:
            _flatten(inner, next_id, out)
