"""The stages of one pipeline run, as plain functions.

Dagster assets (``orchestration/``) wrap these one to one; the scenario runner and the benchmark
call the same functions in the same order, so what they exercise and time is what production runs.
Each stage opens its own warehouse connection and closes it before returning: DuckDB allows one
writing process at a time, and dbt opens the file itself in between.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from journeys.engine import JourneyRunSummary, run_journeys
from nudge.core.checked_content import load_workspace_content, sql_segment_names
from nudge.core.clock import to_utc_naive as to_naive_utc
from nudge.core.clock import utc_now
from nudge.core.dsl.spec import Content
from nudge.core.landing.loader import LoadResult, load_new_files
from nudge.core.segments.dbt_models import generated_segment_models
from nudge.core.segments.manual import load_manual_segments, manual_segment_models
from nudge.core.warehouse.connection import connect
from nudge.core.warehouse.dbt import DbtWorkspaceProject, NodeResult
from nudge.core.warehouse.journey_controls import pending_paused_journeys
from nudge.core.warehouse.schema import ensure_tables
from nudge.core.workspace import Workspace
from senders.dispatch import DispatchSummary, dispatch_pending
from senders.feedback import apply_feedback
from senders.ledger import scrub_erased_people
from senders.providers import Provider

REPORTS_SELECTOR = "tag:delivery_reports"


def new_run_id(as_of: datetime, salt: str = "") -> str:
    """A run id that is stable for (as_of, salt): reruns at the same instant share it."""
    digest = hashlib.sha256(f"{as_of.isoformat()}|{salt}".encode()).hexdigest()[:12]
    return f"{as_of:%Y%m%dT%H%M%S}-{digest}"


def prepare_project(
    workspace: Workspace, content: Content, *, dbt_source: Path | None = None
) -> DbtWorkspaceProject:
    """Assemble the workspace's dbt project (repo models + generated segment models) and parse it.

    ``dbt_source``: the dbt project to assemble from (default: ``dbt_source_dir()``).
    """
    project = DbtWorkspaceProject(workspace, source_dir=dbt_source)
    segments = generated_segment_models(content)
    taken = {*segments, *sql_segment_names(dbt_source)}
    manual = manual_segment_models(workspace, taken_names=taken)
    project.assemble({**segments, **manual})
    project.manifest()
    return project


def prepare_workspace(workspace: Workspace) -> tuple[Content, DbtWorkspaceProject]:
    """Validate the content directory and assemble the dbt project; raises on bad definitions."""
    workspace.ensure()
    content = load_workspace_content(workspace)
    with connect(workspace.warehouse_path) as con:
        ensure_tables(con)
    return content, prepare_project(workspace, content)


def start_run(workspace: Workspace, *, as_of: datetime, run_id: str) -> None:
    with connect(workspace.warehouse_path) as con:
        ensure_tables(con)
        con.execute(
            """
            insert into nudge.runs (run_id, as_of, started_at, status) values (?, ?, ?, 'running')
            on conflict (run_id) do update set started_at = excluded.started_at, status = 'running'
            """,
            [run_id, as_of, utc_now()],
        )


def finish_run(workspace: Workspace, *, run_id: str, status: str = "succeeded") -> None:
    with connect(workspace.warehouse_path) as con:
        con.execute(
            "update nudge.runs set finished_at = ?, status = ? where run_id = ?",
            [utc_now(), status, run_id],
        )


def finish_unfinished_runs(
    workspace: Workspace, run_ids: Collection[str], *, status: str = "failed"
) -> None:
    """Close the rows of ``run_ids`` still marked running: runs that died, or whose failed step
    never reached ``finish_run``."""
    if not run_ids:
        return
    with connect(workspace.warehouse_path) as con:
        ensure_tables(con)
        con.execute(
            "update nudge.runs set finished_at = ?, status = ?"
            " where status = 'running' and run_id in (select unnest(?::varchar[]))",
            [utc_now(), status, list(run_ids)],
        )


def fail_abandoned_runs(workspace: Workspace, *, current_run_id: str) -> list[str]:
    """Mark failed every row still running but ``current_run_id``'s; their ids.

    Only for a caller holding the workspace's run lock (``orchestration.run_lock``): every Dagster run
    holds it while it works, so such a row belongs to a run whose process died.
    """
    if not workspace.warehouse_path.exists():  # no run yet; a run with bad definitions makes none
        return []
    with connect(workspace.warehouse_path) as con:
        ensure_tables(con)
        rows = con.execute(
            "update nudge.runs set finished_at = ?, status = 'failed'"
            " where status = 'running' and run_id <> ? returning run_id",
            [utc_now(), current_run_id],
        ).fetchall()
    return sorted(run_id for (run_id,) in rows)


def load_landing(workspace: Workspace) -> LoadResult:
    with connect(workspace.warehouse_path) as con:
        ensure_tables(con)
        load_manual_segments(con, workspace.manual_segments_landing_dir)
        return load_new_files(con, workspace.events_landing_dir)


def build_models(project: DbtWorkspaceProject, *, as_of: datetime) -> list[NodeResult]:
    """Everything dbt builds before sending: staging, attributes, segments, membership history."""
    return project.build(as_of, exclude=REPORTS_SELECTOR)


def plan_journeys(
    workspace: Workspace, content: Content, *, as_of: datetime, run_id: str
) -> JourneyRunSummary:
    with connect(workspace.warehouse_path) as con:
        return run_journeys(con, content, as_of=as_of, run_id=run_id)


# The dbt model of deleted and suppressed ids (dbt_project/models/marts/dim_erased_users.sql).
ERASED_USERS = "marts.dim_erased_users"


def send_pending(
    workspace: Workspace,
    content: Content,
    providers: Mapping[str, Provider],
    *,
    as_of: datetime,
    run_id: str,
    channels: Collection[str] | None = None,
) -> DispatchSummary:
    """Fold in provider feedback, erase what the ledger and the feedback kept about people
    deleted or suppressed by now, then send pending outbox rows of ``channels`` (default: every
    channel with a provider)."""
    with connect(workspace.warehouse_path) as con:
        apply_feedback(con, now=as_of)
        scrub_erased_people(con, ERASED_USERS)
        return dispatch_pending(
            con,
            as_of=as_of,
            run_id=run_id,
            content=content,
            providers=providers,
            channels=channels if channels is not None else tuple(providers),
            paused_journeys=lambda: pending_paused_journeys(workspace.control_requests_dir),
        )


def build_reports(project: DbtWorkspaceProject, *, as_of: datetime) -> list[NodeResult]:
    """The dbt marts over the delivery ledger and journey state, built after sending."""
    return project.build(as_of, select=REPORTS_SELECTOR)


@dataclass
class PipelineResult:
    run_id: str
    as_of: datetime
    loaded: LoadResult
    journeys: JourneyRunSummary
    dispatch: DispatchSummary
    dbt_nodes: list[NodeResult] = field(default_factory=list)


def run_pipeline(
    workspace: Workspace,
    content: Content,
    project: DbtWorkspaceProject,
    providers: Mapping[str, Provider],
    *,
    as_of: datetime,
    run_id: str | None = None,
) -> PipelineResult:
    """Every stage in order, in this process: what one Dagster run of the whole graph does."""
    as_of = to_naive_utc(as_of)
    run_id = run_id or new_run_id(as_of)
    start_run(workspace, as_of=as_of, run_id=run_id)
    try:
        loaded = load_landing(workspace)
        nodes = build_models(project, as_of=as_of)
        journeys = plan_journeys(workspace, content, as_of=as_of, run_id=run_id)
        dispatch = send_pending(workspace, content, providers, as_of=as_of, run_id=run_id)
        nodes += build_reports(project, as_of=as_of)
    except BaseException:
        finish_run(workspace, run_id=run_id, status="failed")
        raise
    finish_run(workspace, run_id=run_id)
    return PipelineResult(run_id, as_of, loaded, journeys, dispatch, nodes)
