"""One asset per journey (its own group) plus the journey state the reports read.

On DuckDB every journey is planned in one step, by a single call of the engine
(``orchestration.stages.plan_journeys``), so conditions shared by several journeys are computed
once per run (``journeys.condition_cache``); the file has one writer at a time anyway. On a server
warehouse each journey is a step of its own, so a multiprocess executor plans independent
journeys at once; the journey state is then a step after them. Either way each journey has its
own asset, lineage to the segments it reads and checks.
"""

import dagster as dg

from nudge.core.dsl.spec import Journey
from orchestration.asset_keys import JOURNEY_STATE, journey_key, model_key, segment_key
from orchestration.defs.journeys.checks import journey_entries_check
from orchestration.defs.journeys.lineage import journey_segments
from orchestration.defs.stage_order import stage_tags
from orchestration.location import count_rows, load_location
from orchestration.run_context import as_of_for, warehouse_pool
from orchestration.stages import Stage, plan_journeys

JOURNEY_INPUTS = [
    model_key("marts", model)
    for model in ("dim_users", "dim_user_traits", "fct_events", "fct_segment_membership_history")
]


def journey_spec(journey: Journey) -> dg.AssetSpec:
    segment_keys = [segment_key(s) for s in sorted(journey_segments(journey))]
    return dg.AssetSpec(
        journey_key(journey.name),
        deps=[*JOURNEY_INPUTS, *segment_keys],
        group_name=f"journey_{journey.name}",
        kinds={"duckdb"},
        description=journey.description or f"Journey {journey.name} ({journey.origin.file}).",
    )


def journey_state_spec(journeys: list[Journey]) -> dg.AssetSpec:
    return dg.AssetSpec(
        JOURNEY_STATE,
        deps=[journey_key(j.name) for j in journeys] or JOURNEY_INPUTS,
        group_name="journeys",
        kinds={"duckdb"},
        description="Entries per journey and status (nudge.journey_entries, journey_transitions).",
    )


def journey_state_counts() -> dict[str, int]:
    return count_rows(
        "select journey || '.' || status, count(*) from nudge.journey_entries"
        " group by all order by all"
    )


def _planned(context: dg.AssetExecutionContext, only: tuple[str, ...] | None = None):
    """Plan the run's journeys (or those in ``only``) in the code location's workspace."""
    location = load_location()
    return plan_journeys(
        location.workspace,
        location.content,
        as_of=as_of_for(context),
        run_id=context.run.run_id,
        only=only,
    )


def journeys_asset(journeys: list[Journey]) -> dg.AssetsDefinition:
    @dg.multi_asset(
        name="plan_journeys",
        specs=[*(journey_spec(j) for j in journeys), journey_state_spec(journeys)],
        pool=warehouse_pool(),
        op_tags=stage_tags(Stage.PLAN_JOURNEYS),
    )
    def _plan(context: dg.AssetExecutionContext):
        summary = _planned(context)
        for journey in journeys:
            yield dg.MaterializeResult(
                asset_key=journey_key(journey.name), metadata=summary.metadata_for(journey.name)
            )
        yield dg.MaterializeResult(asset_key=JOURNEY_STATE, metadata=journey_state_counts())

    return _plan


def journey_asset(journey: Journey) -> dg.AssetsDefinition:
    """One journey planned in a step of its own (server warehouses)."""

    @dg.multi_asset(
        name=f"plan_journey_{journey.name}",
        specs=[journey_spec(journey)],
        op_tags=stage_tags(Stage.PLAN_JOURNEYS),
    )
    def _plan(context: dg.AssetExecutionContext):
        summary = _planned(context, only=(journey.name,))
        yield dg.MaterializeResult(
            asset_key=journey_key(journey.name), metadata=summary.metadata_for(journey.name)
        )

    return _plan


def journey_state_asset(journeys: list[Journey]) -> dg.AssetsDefinition:
    """The journey state, read after every journey's step (server warehouses)."""

    @dg.multi_asset(
        name="journey_state",
        specs=[journey_state_spec(journeys)],
        op_tags=stage_tags(Stage.PLAN_JOURNEYS),
    )
    def _state():
        yield dg.MaterializeResult(asset_key=JOURNEY_STATE, metadata=journey_state_counts())

    return _state


def journey_definitions() -> dg.Definitions:
    journeys = list(load_location().content.journeys)
    if warehouse_pool() is not None:  # one writer at a time: one step, conditions shared
        assets = [journeys_asset(journeys)]
    else:
        assets = [*(journey_asset(j) for j in journeys), journey_state_asset(journeys)]
    return dg.Definitions(
        assets=assets,
        asset_checks=[journey_entries_check(j, journey_key(j.name)) for j in journeys],
    )
