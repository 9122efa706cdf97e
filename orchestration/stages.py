"""The stages of one pipeline run, as plain functions, and their order (``Stage``), written once.

Dagster assets (``orchestration/defs/``) wrap these and carry their stage as an op tag; the code
location refuses to load when its graph would run them in another order
(``orchestration.defs.stage_order``). ``run_stages`` runs them in that order for ``nudge run
--dry-run``, the scenario runner and the benchmark, so what they exercise and time is what
production runs.
Each stage opens its own warehouse connection and closes it before returning: DuckDB allows one
writing process at a time, and dbt opens the file itself in between.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import duckdb

from journeys.engine import JourneyRunSummary, run_journeys
from journeys.merges import follow_merges
from nudge.core.checked_content import load_workspace_content, sql_segment_names
from nudge.core.clock import to_utc_naive, utc_now
from nudge.core.dsl.spec import Content
from nudge.core.landing.erasure import purge_erased_calls
from nudge.core.landing.journal import recover_abandoned
from nudge.core.landing.loader import LoadResult, load_new_files
from nudge.core.landing.postgres_loader import (
    load_manual_segments_postgres,
    load_new_files_postgres,
)
from nudge.core.segments.dbt_models import generated_segment_models
from nudge.core.segments.manual import load_manual_segments, manual_segment_models
from nudge.core.warehouse.connection import connect, warehouse_exists
from nudge.core.warehouse.dbt import DbtWorkspaceProject, NodeResult
from nudge.core.warehouse.journey_controls import pending_paused_journeys
from nudge.core.warehouse.postgres import connect_postgres
from nudge.core.warehouse.schema import ensure_tables
from nudge.core.warehouse.settings import warehouse
from nudge.core.workspace import Workspace
from orchestration.earlier_as_of import EarlierThanLastRun
from senders.dispatch import DispatchSummary, dispatch_pending
from senders.feedback import apply_feedback
from senders.ledger import scrub_erased_people
from senders.providers import Provider
from senders.transactional import copy_into_ledger, mirror_suppressed_addresses

REPORTS_SELECTOR = "tag:delivery_reports"


class Stage(StrEnum):
    """The stages of a run, declared in the order every run takes them."""

    LOAD = "load"
    BUILD_MODELS = "build_models"
    PLAN_JOURNEYS = "plan_journeys"
    SEND = "send"
    BUILD_REPORTS = "build_reports"

    @property
    def number(self) -> int:
        """1-based position in the run."""
        return list(Stage).index(self) + 1

    @property
    def label(self) -> str:
        return STAGE_LABELS[self]


STAGE_LABELS = {
    Stage.LOAD: "load the landing area",
    Stage.BUILD_MODELS: "build dbt models and segments",
    Stage.PLAN_JOURNEYS: "plan journeys",
    Stage.SEND: "send messages",
    Stage.BUILD_REPORTS: "build delivery reports",
}
# Op tag naming the stage of a Dagster asset (orchestration/defs/); see ``Stage``.
STAGE_TAG = "nudge/stage"

# ``around(stage, call)`` runs ``call`` (the stage) and returns its result: a place to time it.
StageWrapper = Callable[[Stage, Callable[[], Any]], Any]


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


def latest_succeeded_as_of(workspace: Workspace) -> datetime | None:
    """The as_of of the latest succeeded run, read only; None before the first."""
    if not warehouse_exists(workspace.warehouse_path):
        return None
    with connect(workspace.warehouse_path, read_only=True) as con:
        try:
            (latest,) = con.execute(
                "select max(as_of) from nudge.runs where status = 'succeeded'"
            ).fetchone()
        except duckdb.CatalogException:  # a warehouse no run has written to yet
            return None
    return latest


def refuse_earlier_as_of(workspace: Workspace, *, as_of: datetime, run_id: str) -> None:
    """Raise ``EarlierThanLastRun`` when ``as_of`` precedes the last succeeded run, after
    recording ``run_id`` as ``refused`` in ``nudge.runs``."""
    latest = latest_succeeded_as_of(workspace)
    if latest is None or as_of >= latest:
        return
    with connect(workspace.warehouse_path) as con:
        con.execute(
            "insert or replace into nudge.runs (run_id, as_of, started_at, finished_at, status)"
            " values (?, ?, ?, ?, 'refused')",
            [run_id, as_of, utc_now(), utc_now()],
        )
    raise EarlierThanLastRun(as_of, latest)


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
    never reached ``finish_run``. Creates no warehouse: a run refused before its first stage
    (bad definitions) leaves none behind."""
    if not run_ids or not warehouse_exists(workspace.warehouse_path):
        return
    with connect(workspace.warehouse_path) as con:
        ensure_tables(con)
        con.execute(
            "update nudge.runs set finished_at = ?, status = ?"
            " where status = 'running' and list_contains(cast(? as varchar[]), run_id)",
            [utc_now(), status, list(run_ids)],
        )


def fail_abandoned_runs(workspace: Workspace, *, current_run_id: str) -> list[str]:
    """Mark failed every row still running but ``current_run_id``'s; their ids.

    Only for a caller holding the workspace's run lock (``orchestration.run_lock``): every Dagster run
    holds it while it works, so such a row belongs to a run whose process died.
    """
    if not warehouse_exists(
        workspace.warehouse_path
    ):  # no run yet; a run with bad definitions makes none
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
    if warehouse() == "postgres":
        return _load_landing_postgres(workspace)
    with connect(workspace.warehouse_path) as con:
        ensure_tables(con)
        load_manual_segments(con, workspace.manual_segments_landing_dir)
        return load_new_files(con, workspace.events_landing_dir)


def _load_landing_postgres(workspace: Workspace) -> LoadResult:
    """The landing files and manual segment uploads into Postgres with ``COPY``."""
    recover_abandoned(workspace.events_landing_dir.resolve())
    with connect_postgres() as con:
        load_manual_segments_postgres(con, workspace.manual_segments_landing_dir)
        return load_new_files_postgres(con, workspace.events_landing_dir)


def build_models(project: DbtWorkspaceProject, *, as_of: datetime) -> list[NodeResult]:
    """Everything dbt builds before sending: staging, attributes, segments, membership history."""
    return project.build(as_of, exclude=REPORTS_SELECTOR)


def plan_journeys(
    workspace: Workspace, content: Content, *, as_of: datetime, run_id: str
) -> JourneyRunSummary:
    """Give merged people their ids' journey entries (``journeys.merges``), then run every
    journey."""
    with connect(workspace.warehouse_path) as con:
        follow_merges(con, as_of, run_id)
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
    """Fold in provider feedback, copy the collector's transactional sends into the ledger (and
    give it the suppressed addresses), erase what the ledger, the feedback and the copies of the
    landed calls kept about people deleted or suppressed by now, then send pending outbox rows
    of ``channels`` (default: every channel with a provider)."""
    with connect(workspace.warehouse_path) as con:
        apply_feedback(con, now=as_of)
        copy_into_ledger(con, run_id=run_id, as_of=as_of)
        mirror_suppressed_addresses(con)
        scrub_erased_people(con, ERASED_USERS)
        purge_erased_calls(con, ERASED_USERS)
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


def stage_calls(
    workspace: Workspace,
    content: Content,
    project: DbtWorkspaceProject,
    providers: Mapping[str, Provider],
    *,
    as_of: datetime,
    run_id: str,
) -> dict[Stage, Callable[[], Any]]:
    """Each stage of one run as a call without arguments."""
    return {
        Stage.LOAD: lambda: load_landing(workspace),
        Stage.BUILD_MODELS: lambda: build_models(project, as_of=as_of),
        Stage.PLAN_JOURNEYS: lambda: plan_journeys(workspace, content, as_of=as_of, run_id=run_id),
        Stage.SEND: lambda: send_pending(workspace, content, providers, as_of=as_of, run_id=run_id),
        Stage.BUILD_REPORTS: lambda: build_reports(project, as_of=as_of),
    }


def run_stages(
    calls: Mapping[Stage, Callable[[], Any]], *, around: StageWrapper | None = None
) -> dict[Stage, Any]:
    """Every stage's call in the order of ``Stage``; their results by stage."""
    results: dict[Stage, Any] = {}
    for stage in Stage:
        results[stage] = around(stage, calls[stage]) if around else calls[stage]()
    return results


def run_pipeline(
    workspace: Workspace,
    content: Content,
    project: DbtWorkspaceProject,
    providers: Mapping[str, Provider],
    *,
    as_of: datetime,
    run_id: str | None = None,
    around: StageWrapper | None = None,
) -> PipelineResult:
    """Every stage in order, in this process: what one Dagster run of the whole graph does."""
    as_of = to_utc_naive(as_of)
    run_id = run_id or new_run_id(as_of)
    refuse_earlier_as_of(workspace, as_of=as_of, run_id=run_id)
    start_run(workspace, as_of=as_of, run_id=run_id)
    calls = stage_calls(workspace, content, project, providers, as_of=as_of, run_id=run_id)
    try:
        results = run_stages(calls, around=around)
    except BaseException:
        finish_run(workspace, run_id=run_id, status="failed")
        raise
    finish_run(workspace, run_id=run_id)
    return PipelineResult(
        run_id,
        as_of,
        results[Stage.LOAD],
        results[Stage.PLAN_JOURNEYS],
        results[Stage.SEND],
        [*results[Stage.BUILD_MODELS], *results[Stage.BUILD_REPORTS]],
    )
