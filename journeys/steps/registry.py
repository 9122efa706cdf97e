"""Every step kind's engine side, registered once; ``tests/test_kind_registries.py`` checks that
each kind of ``nudge.core.dsl.steps.registry`` has one."""

from __future__ import annotations

from journeys.steps import (
    branch,
    send,
    split,
    update_attribute,
    wait,
    wait_until,
    window,
)
from journeys.steps import exit as exit_step
from journeys.steps.kind import StepEngine

STEP_ENGINES: dict[type, StepEngine] = {
    engine.action: engine
    for engine in (
        send.ENGINE,
        wait.ENGINE,
        wait_until.ENGINE,
        window.ENGINE,
        branch.ENGINE,
        split.ENGINE,
        update_attribute.ENGINE,
        exit_step.ENGINE,
    )
}


def step_engine(action: object) -> StepEngine:
    """The engine side of a step's kind (``KeyError`` naming it when unregistered)."""
    try:
        return STEP_ENGINES[type(action)]
    except KeyError:
        raise KeyError(f"no step engine registered for {type(action).__name__}") from None
