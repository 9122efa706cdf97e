"""One pipeline run through Dagster, in this process, recorded in the workspace's instance."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from nudge.workspace import Workspace

PIPELINE_JOB = "nudge_pipeline"
# The run's own events are summarised below; the console logger would print every engine event.
QUIET_LOGGING = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def run_through_dagster(
    workspace: Workspace, as_of: datetime, *, progress: Callable[[str], None] | None = None
) -> bool:
    """Execute the whole asset graph at ``as_of``; the environment must point at ``workspace``."""
    import dagster as dg

    from orchestration.definitions import defs
    from orchestration.run_context import as_of_tag

    job = defs.resolve_job_def(PIPELINE_JOB)
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(
            run_config=QUIET_LOGGING, instance=instance, tags=as_of_tag(as_of), raise_on_error=False
        )
    if progress:
        for event in result.all_events:
            if event.event_type_value == "ASSET_MATERIALIZATION":
                progress(f"  materialized {event.asset_key.to_user_string()}")
            elif event.is_failure:
                progress(f"  FAILED {event.step_key}: {event.message}")
        progress(f"dagster run {result.run_id}: {'succeeded' if result.success else 'failed'}")
    return result.success
