"""The landing area (files the collector and ``nudge ingest`` write) and its load into the warehouse."""

import dagster as dg

from orchestration.asset_keys import COLLECTOR, LANDING_EVENTS, RAW_EVENTS
from orchestration.defs.stage_order import stage_tags
from orchestration.location import load_location
from orchestration.run_context import as_of_for, warehouse_pool
from orchestration.stages import Stage, load_landing, refuse_earlier_as_of, start_run

# External: `nudge serve` (and `nudge ingest`) run outside Dagster; the graph only shows where
# the landed files come from.
collector = dg.AssetSpec(
    COLLECTOR,
    description=(
        "The HTTP collector (`nudge serve`: Segment and Customer.io APIs) and `nudge ingest`, "
        "which validate messages and land them; runs outside Dagster."
    ),
    group_name="landing",
    kinds={"python"},
)

landing_events = dg.AssetSpec(
    LANDING_EVENTS,
    deps=[collector],
    description="Segment-spec messages landed as parquet files, each written atomically.",
    group_name="landing",
    kinds={"parquet"},
)


def raw_events_asset() -> dg.AssetsDefinition:
    """The load into the warehouse, in the configured warehouse's pool."""

    @dg.asset(
        key=RAW_EVENTS,
        deps=[landing_events],
        group_name="landing",
        kinds={"duckdb"},
        pool=warehouse_pool(),
        op_tags=stage_tags(Stage.LOAD),
        description="Every landed message, copied once into the warehouse (raw.events).",
    )
    def raw_events(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        location = load_location()
        as_of, run_id = as_of_for(context), context.run.run_id
        refuse_earlier_as_of(location.workspace, as_of=as_of, run_id=run_id)
        start_run(location.workspace, as_of=as_of, run_id=run_id)
        loaded = load_landing(location.workspace)
        return dg.MaterializeResult(
            metadata={"files_loaded": loaded.files, "rows_loaded": loaded.rows}
        )

    return raw_events


def landing_definitions() -> dg.Definitions:
    return dg.Definitions(assets=[collector, landing_events, raw_events_asset()])
