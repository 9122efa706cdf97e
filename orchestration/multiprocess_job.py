"""The pipeline job under Dagster's multiprocess executor: each step in a process of its own.

For an instance whose storage several processes share (Postgres, ``orchestration.instance``).
The assets that open the DuckDB file still take the ``duckdb`` pool one step at a time (the
instance's pool limit), so only steps that do not touch the file overlap. Each step process
rebuilds the job from this module (``dagster.reconstructable``), e.g.
``dg.execute_job(dg.reconstructable(multiprocess_pipeline_job), instance=...)``. Like the code
location's own executor, the run takes the workspace's run lock first (its step processes work
under it) and records its final status in ``nudge.runs``.
"""

from __future__ import annotations

import dagster as dg

from orchestration.executor import one_run_at_a_time

MULTIPROCESS_JOB = "nudge_pipeline_multiprocess"


def multiprocess_pipeline_job() -> dg.JobDefinition:
    """Every asset of the code location, as one job run by the multiprocess executor."""
    from orchestration.definitions import build_definitions

    job = dg.define_asset_job(
        MULTIPROCESS_JOB,
        selection=dg.AssetSelection.all(),
        executor_def=one_run_at_a_time(dg.multiprocess_executor, "multiprocess_one_run_at_a_time"),
    )
    defs = dg.Definitions.merge(build_definitions(), dg.Definitions(jobs=[job]))
    return defs.resolve_job_def(MULTIPROCESS_JOB)
