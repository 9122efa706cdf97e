"""The pipeline job, its schedule (off by default) and the sensor on new landing files."""

from datetime import UTC, datetime

import dagster as dg

from orchestration.location import load_location
from orchestration.run_context import as_of_tag

pipeline_job = dg.define_asset_job(
    "nudge_pipeline",
    selection=dg.AssetSelection.all(),
    description="One pipeline run: load landing, dbt, journeys, send, ledger, reports.",
)


@dg.schedule(
    job=pipeline_job,
    cron_schedule="*/5 * * * *",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="A run every five minutes, so time-window segments and waits move on their own.",
)
def every_five_minutes(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    scheduled = context.scheduled_execution_time or datetime.now(UTC)
    return dg.RunRequest(tags=as_of_tag(scheduled.astimezone(UTC).replace(tzinfo=None)))


# The sensor daemon evaluates sensors at most every 5 s. A minimum of 5 s would skip every other
# loop whenever a loop came a moment early (ticks 10 s apart, measured); 1 s lets every loop tick.
# A tick only lists a directory.
@dg.sensor(
    job=pipeline_job,
    minimum_interval_seconds=1,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts a run when new files appear in the landing area.",
)
def new_landing_files(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    landing = load_location().workspace.events_landing_dir
    names = sorted(p.name for p in landing.glob("*.parquet")) if landing.exists() else []
    newer = [name for name in names if context.cursor is None or name > context.cursor]
    if not newer:
        return dg.SkipReason("no new landing files")
    now = datetime.now(UTC).replace(tzinfo=None)
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=newer[-1], tags=as_of_tag(now))],
        cursor=newer[-1],
    )


def automation_definitions() -> dg.Definitions:
    return dg.Definitions(
        jobs=[pipeline_job], schedules=[every_five_minutes], sensors=[new_landing_files]
    )
