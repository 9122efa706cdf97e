"""The sensor that starts a run when new files land."""

import dagster as dg

from nudge.core.clock import utc_now
from nudge.core.warehouse.connection import WarehouseBusy
from orchestration.defs.automation.jobs import pipeline_job
from orchestration.defs.automation.loaded import last_loaded
from orchestration.location import load_location
from orchestration.run_context import as_of_tag


# The sensor daemon evaluates sensors at most every 5 s. A minimum of 5 s would skip every other
# loop whenever a loop came a moment early (ticks 10 s apart, measured); 1 s lets every loop tick.
# A tick only lists a directory (the first one also reads raw.loaded_files, see below).
@dg.sensor(
    job=pipeline_job,
    minimum_interval_seconds=1,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts a run when new files appear in the landing area.",
)
def new_landing_files(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    workspace = load_location().workspace
    landing = workspace.events_landing_dir
    names = sorted(p.name for p in landing.glob("*.parquet")) if landing.exists() else []
    cursor = context.cursor
    if cursor is None:
        # First tick (the UI just opened on this workspace): start after what earlier runs loaded.
        try:
            cursor = last_loaded(workspace, names)
        except WarehouseBusy:
            return dg.SkipReason("a run holds the warehouse; looking at the landing files later")
    newer = [name for name in names if cursor is None or name > cursor]
    if not newer and cursor == context.cursor:
        return dg.SkipReason("no new landing files")
    if not newer:
        return dg.SensorResult(skip_reason="no new landing files since the last run", cursor=cursor)
    now = utc_now()
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=newer[-1], tags=as_of_tag(now))],
        cursor=newer[-1],
    )
