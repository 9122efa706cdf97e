"""The automation of a workspace: the pipeline job, its schedule and its sensor."""

import dagster as dg

from orchestration.defs.automation.jobs import pipeline_job
from orchestration.defs.automation.schedules import every_five_minutes
from orchestration.defs.automation.sensors import new_landing_files


def automation_definitions() -> dg.Definitions:
    return dg.Definitions(
        jobs=[pipeline_job], schedules=[every_five_minutes], sensors=[new_landing_files]
    )
