"""The schedule that moves time on its own (off by default)."""

from datetime import UTC, datetime

import dagster as dg

from nudge.core.clock import to_utc_naive
from orchestration.defs.automation.jobs import pipeline_job
from orchestration.run_context import as_of_tag


@dg.schedule(
    job=pipeline_job,
    cron_schedule="*/5 * * * *",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="A run every five minutes, so time-window segments and waits move on their own.",
)
def every_five_minutes(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    scheduled = context.scheduled_execution_time or datetime.now(UTC)
    return dg.RunRequest(tags=as_of_tag(to_utc_naive(scheduled)))
