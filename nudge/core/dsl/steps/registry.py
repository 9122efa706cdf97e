"""Every step kind, registered once: the parser, the checks, the walkers and (in ``journeys``)
the engine derive from this list. Adding a kind: its dataclass in ``nudge.core.dsl.spec``, its
module here, and its engine module in ``journeys.steps``."""

from __future__ import annotations

from nudge.core.dsl.steps import (
    branch,
    send,
    split,
    update_attribute,
    wait,
    wait_until,
    window,
)
from nudge.core.dsl.steps import exit as exit_step
from nudge.core.dsl.steps.kind import StepKind

STEP_KINDS: dict[str, StepKind] = {
    kind.key: kind
    for kind in (
        send.KIND,
        wait.KIND,
        wait_until.KIND,
        window.KIND,
        branch.KIND,
        split.KIND,
        update_attribute.KIND,
        exit_step.KIND,
    )
}
_BY_ACTION = {kind.action: kind for kind in STEP_KINDS.values()}


def step_kind(action: object) -> StepKind:
    """The registered kind of a step's action (``KeyError`` naming it when unregistered)."""
    try:
        return _BY_ACTION[type(action)]
    except KeyError:
        raise KeyError(f"no step kind registered for {type(action).__name__}") from None
