"""Every step and trigger kind is registered once in the core and has its engine side."""

from __future__ import annotations

import typing

from journeys.steps.registry import STEP_ENGINES
from journeys.triggers.registry import TRIGGER_ENGINES
from nudge.core.dsl import spec
from nudge.core.dsl.steps.registry import STEP_KINDS
from nudge.core.dsl.triggers.registry import TRIGGER_KINDS


def test_every_step_kind_has_its_engine_side_and_its_place_in_the_spec():
    core = {kind.action for kind in STEP_KINDS.values()}
    assert core == set(STEP_ENGINES), "a step kind lacks its engine module (journeys/steps/)"
    assert core == set(typing.get_args(spec.StepAction))
    assert len(core) == len(STEP_KINDS), "two step keys share one dataclass"


def test_every_trigger_kind_has_its_engine_side_and_its_place_in_the_spec():
    core = {kind.spec for kind in TRIGGER_KINDS.values()}
    assert core == set(TRIGGER_ENGINES), (
        "a trigger kind lacks its engine module (journeys/triggers/)"
    )
    assert core == set(typing.get_args(spec.Trigger))
    assert len(core) == len(TRIGGER_KINDS), "two trigger keys share one dataclass"


def test_registries_keep_the_documented_order_of_kinds():
    # The order is the one error messages list ("expected one of send, wait, ...").
    assert tuple(STEP_KINDS) == (
        "send", "wait", "wait_until", "window", "branch", "split", "update_attribute", "exit",
    )  # fmt: skip
    assert tuple(TRIGGER_KINDS) == (
        "segment_entered", "segment_exited", "event", "attribute_changed", "date", "broadcast",
    )  # fmt: skip
