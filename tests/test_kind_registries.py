"""Every step and trigger kind is registered once in the core and has its engine side."""

from __future__ import annotations

import typing

import yaml

from journeys.program import compile_program
from journeys.steps.registry import STEP_ENGINES
from journeys.triggers.registry import TRIGGER_ENGINES
from nudge.core.dsl import spec
from nudge.core.dsl.load import parse_definitions
from nudge.core.dsl.steps.registry import STEP_KINDS
from nudge.core.dsl.triggers.registry import TRIGGER_KINDS
from nudge.core.dsl.walk import journey_segment_reads
from orchestration.defs.journeys.lineage import journey_segments


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


LINEAGE = """
journeys:
  - name: nested
    trigger: {broadcast: {segment: vips}}
    exit_when: {not: {in_segment: churned}}
    steps:
      - id: pick
        split:
          - percent: 100
            steps:
              - id: check
                branch:
                  if: {any: [{in_segment: buyers}, {attribute: {name: plan, eq: pro}}]}
                  then:
                    - id: hold
                      wait_until: {condition: {in_segment: engaged}, timeout: 1d}
"""


def test_lineage_and_paths_come_from_the_kinds_through_nested_steps():
    content, problems = parse_definitions(yaml.safe_load(LINEAGE), "lineage.yml")
    assert problems == []
    (journey,) = content.journeys
    assert dict(journey_segment_reads(journey)) == {
        "trigger.broadcast.segment": "vips",
        "exit_when.not.in_segment": "churned",
        "steps[0].split[0].steps[0].branch.if.any[0].in_segment": "buyers",
        "steps[0].split[0].steps[0].branch.then[0].wait_until.condition.in_segment": "engaged",
    }
    assert journey_segments(journey) == {"vips", "churned", "buyers", "engaged"}
    program = compile_program(journey)
    assert [(i.id, i.kind, i.next_id, i.targets) for i in program.instructions] == [
        ("pick", "split", None, ("check",)),
        ("check", "branch", None, ("hold", None)),
        ("hold", "wait_until", None, ()),
    ]
