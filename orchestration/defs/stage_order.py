"""The Dagster graph takes the stages of a run in their one order (``orchestration.stages.Stage``).

Every asset's op carries its stage as the op tag ``STAGE_TAG``. ``check_stage_order`` refuses, when
the code location loads, a graph with an op that has no stage or in which an asset of a later stage
feeds one of an earlier stage; ``stage_of_step`` tells ``nudge run`` which stage a step belongs
to, for its progress lines.
"""

from __future__ import annotations

import dagster as dg

from orchestration.stages import STAGE_TAG, Stage


class StageOrderError(ValueError):
    """The asset graph would run the stages of a run in another order than ``Stage``'s."""


def stage_tags(stage: Stage) -> dict[str, str]:
    return {STAGE_TAG: stage.value}


def stage_of(assets: dg.AssetsDefinition) -> Stage | None:
    tag = assets.op.tags.get(STAGE_TAG) if assets.is_executable else None
    return None if tag is None else Stage(tag)


def stages_by_key(defs: dg.Definitions) -> dict[dg.AssetKey, Stage]:
    """The stage of every executable asset of ``defs``; raises on an op without one."""
    stages: dict[dg.AssetKey, Stage] = {}
    for assets in defs.assets or ():
        if not isinstance(assets, dg.AssetsDefinition) or not assets.is_executable:
            continue
        stage = stage_of(assets)
        if stage is None:
            raise StageOrderError(f"op {assets.op.name!r} has no {STAGE_TAG} op tag")
        stages.update(dict.fromkeys(assets.keys, stage))
    return stages


def check_stage_order(defs: dg.Definitions) -> None:
    """Raise ``StageOrderError`` unless every asset depends only on assets of its own stage or of
    an earlier one."""
    stages = stages_by_key(defs)
    order = list(Stage)
    for assets in defs.assets or ():
        if not isinstance(assets, dg.AssetsDefinition) or not assets.is_executable:
            continue
        for spec in assets.specs:
            own = stages[spec.key]
            for dep in spec.deps:
                upstream = stages.get(dep.asset_key)
                if upstream is not None and order.index(upstream) > order.index(own):
                    raise StageOrderError(
                        f"{spec.key.to_user_string()} ({own}) depends on"
                        f" {dep.asset_key.to_user_string()} ({upstream}), a later stage"
                    )


def stage_of_step(job: dg.JobDefinition, step_key: str) -> Stage | None:
    """The stage of the op that ran as ``step_key`` (None for a step outside every stage)."""
    if not job.graph.has_node_named(step_key):
        return None
    tag = job.graph.node_named(step_key).definition.tags.get(STAGE_TAG)
    return None if tag is None else Stage(tag)
