"""Runs whose process died: recorded as failed, their Dagster pool slots freed.

A run killed mid-step (``kill -9``, OOM, a lost machine) never reports its end: its Dagster run
stays STARTED holding the ``duckdb`` pool slot, so every later run waits for that slot for ever,
and its ``nudge.runs`` row stays ``running``. Every run calls ``recover_dead_runs`` once it holds
the workspace's run lock (``orchestration.run_lock``): every run takes that lock, so no other run of the
workspace can be working then: a run whose recorded pid is gone is certainly dead, and so is any
``nudge.runs`` row still ``running``.
"""

from __future__ import annotations

import os
import time

import dagster as dg

from nudge.core.workspace import Workspace
from orchestration.run_lock import process_is_gone
from orchestration.stages import fail_abandoned_runs

PID_TAG = "nudge/pid"
UNFINISHED = [
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
# A run without a pid tag has not reached the run lock yet: it is starting (seconds) or it died
# on the way, or it was started by a nudge without the tag. Past this age it counts as dead.
UNTAGGED_GRACE_SECONDS = 120.0


def pid_tag() -> dict[str, str]:
    """The tag that lets a later run tell whether this run's process still lives."""
    return {PID_TAG: str(os.getpid())}


def _is_dead(record: dg.RunRecord) -> bool:
    pid = record.dagster_run.tags.get(PID_TAG)
    if pid is None:
        return time.time() - record.update_timestamp.timestamp() > UNTAGGED_GRACE_SECONDS
    return process_is_gone(int(pid))


def recover_dead_runs(
    instance: dg.DagsterInstance, workspace: Workspace, *, own_run_id: str
) -> list[str]:
    """Report this instance's dead runs failed, free every slot they (or ended runs) hold, and
    fail the ``nudge.runs`` rows left running; the ids of the runs recorded as failed."""
    dead = []
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=UNFINISHED)):
        run = record.dagster_run
        if run.run_id != own_run_id and _is_dead(record):
            instance.report_run_failed(
                run,
                message=f"The process of this run is gone; marked failed by run {own_run_id}.",
            )
            dead.append(run.run_id)
    storage = instance.event_log_storage
    for run_id in storage.get_concurrency_run_ids():
        run = instance.get_run_by_id(run_id)
        if run_id != own_run_id and (run is None or run.status not in UNFINISHED):
            storage.free_concurrency_slots_for_run(run_id)
    return sorted({*dead, *fail_abandoned_runs(workspace, current_run_id=own_run_id)})
