"""One asset per journey (its own group), plus the journey state the reports read.

Each journey asset runs the engine for that journey: admits the people its trigger selects (the
eligibility diff), applies exits and goals, moves entries along and queues sends in the outbox.
"""

from dataclasses import replace

import dagster as dg

from nudge.core.dsl.spec import Journey
from orchestration.asset_keys import JOURNEY_STATE, journey_key, model_key, segment_key
from orchestration.defs.journeys.checks import journey_entries_check
from orchestration.defs.journeys.lineage import journey_segments
from orchestration.location import count_rows, load_location
from orchestration.run_context import DUCKDB_POOL, as_of_for
from orchestration.stages import plan_journeys

JOURNEY_INPUTS = [
    model_key("marts", model)
    for model in ("dim_users", "dim_user_traits", "fct_events", "fct_segment_membership_history")
]


def journey_asset(journey: Journey) -> dg.AssetsDefinition:
    segment_keys = [segment_key(s) for s in sorted(journey_segments(journey))]

    @dg.asset(
        key=journey_key(journey.name),
        deps=[*JOURNEY_INPUTS, *segment_keys],
        group_name=f"journey_{journey.name}",
        kinds={"duckdb"},
        pool=DUCKDB_POOL,
        description=journey.description or f"Journey {journey.name} ({journey.origin.file}).",
    )
    def _journey(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        location = load_location()
        content = replace(location.content, journeys=(journey,))
        summary = plan_journeys(
            location.workspace, content, as_of=as_of_for(context), run_id=context.run.run_id
        )
        return dg.MaterializeResult(metadata=summary.metadata_for(journey.name))

    return _journey


def journey_state_asset(journeys: list[Journey]) -> dg.AssetsDefinition:
    @dg.asset(
        key=JOURNEY_STATE,
        deps=[journey_key(j.name) for j in journeys],
        group_name="journeys",
        kinds={"duckdb"},
        pool=DUCKDB_POOL,
        description="Entries per journey and status (nudge.journey_entries, journey_transitions).",
    )
    def journey_state() -> dg.MaterializeResult:
        return dg.MaterializeResult(
            metadata=count_rows(
                "select journey || '.' || status, count(*) from nudge.journey_entries"
                " group by all order by all"
            )
        )

    return journey_state


def journey_definitions() -> dg.Definitions:
    journeys = list(load_location().content.journeys)
    return dg.Definitions(
        assets=[*(journey_asset(j) for j in journeys), journey_state_asset(journeys)],
        asset_checks=[journey_entries_check(j, journey_key(j.name)) for j in journeys],
    )
