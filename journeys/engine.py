"""Running every journey for one pipeline run at ``as_of``.

Paused journeys (``nudge.core.warehouse.journey_controls``) are left as they are. For each other journey, in one
transaction: admit new entries from the trigger, apply the exits
(``exit_when``, ``exit_on_trigger_lost``, then the goal) to every active entry, then advance
everyone as far as they can go. A run is deterministic (ids are hashes of what they identify,
timestamps are ``as_of``) and re-runnable: running the same ``as_of`` again adds nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime

import duckdb

from journeys.admission import admit
from journeys.advance import advance
from journeys.condition_cache import ConditionTables
from journeys.context import JourneyRun
from journeys.exits import apply_exits
from journeys.program import compile_program
from journeys.triggers.candidates import fill_candidates
from journeys.versions import record_version
from nudge.core.dsl.spec import Content, Journey, Origin
from nudge.core.warehouse.journey_controls import paused_journeys

WORK_TABLES = (
    "_nj_candidates",
    "_nj_considered",
    "_nj_unblocked",
    "_nj_firings",
    "_nj_admit",
    "_nj_move",
    "_nj_converted",
    "_nj_entry_zones",
    "_nj_zones",
)


@dataclass(frozen=True)
class JourneyStats:
    """What one run did in one journey (``waiting``: entries still active after the run)."""

    entered: int = 0
    exited: int = 0
    completed: int = 0
    converted: int = 0
    sends_planned: int = 0
    waiting: int = 0


@dataclass(frozen=True)
class JourneyRunSummary:
    run_id: str
    as_of: datetime
    journeys: dict[str, JourneyStats] = field(default_factory=dict)

    def metadata_for(self, journey: str) -> dict[str, int]:
        return asdict(self.journeys.get(journey, JourneyStats()))


def journey_version(journey: Journey) -> str:
    """A hash of the journey's definition (where it was read from and its description aside)."""
    definition = replace(journey, origin=Origin("", ""), description="")
    return hashlib.sha256(repr(definition).encode()).hexdigest()[:16]


def run_journeys(
    con: duckdb.DuckDBPyConnection,
    content: Content,
    *,
    as_of: datetime,
    run_id: str,
    only: Collection[str] | None = None,
) -> JourneyRunSummary:
    """Run every journey of ``content`` (or those named in ``only``) at ``as_of`` (naive UTC);
    see the module docstring. Journeys share no rows, so on a server warehouse separate calls
    for separate journeys may run at once; conditions are then cached per call."""
    if as_of.tzinfo is not None:
        raise ValueError(f"run_journeys: as_of must be naive UTC, got {as_of.isoformat()}")
    conditions = ConditionTables(con, as_of, content.topics)
    paused = paused_journeys(con)
    stats: dict[str, JourneyStats] = {}
    try:
        for journey in content.journeys:
            if only is not None and journey.name not in only:
                continue
            if journey.name in paused:
                stats[journey.name] = JourneyStats(waiting=_active_count(con, journey.name))
                continue
            run = JourneyRun(
                con=con,
                journey=journey,
                program=compile_program(journey),
                as_of=as_of,
                run_id=run_id,
                version=journey_version(journey),
                conditions=conditions,
            )
            stats[journey.name] = _run_one(run)
    finally:
        conditions.drop()
        for table in WORK_TABLES:
            con.execute(f"drop table if exists {table}")
    return JourneyRunSummary(run_id, as_of, stats)


def _run_one(run: JourneyRun) -> JourneyStats:
    run.con.begin()
    try:
        record_version(run)
        fill_candidates(run)
        entered = admit(run)
        apply_exits(run)
        advance(run)
        waiting = run.active_count()
        run.con.commit()
    except BaseException:
        run.con.rollback()
        raise
    return JourneyStats(
        entered=entered,
        exited=run.counts["exited"],
        completed=run.counts["completed"],
        converted=run.counts["converted"],
        sends_planned=run.counts["sent"],
        waiting=waiting,
    )


def _active_count(con: duckdb.DuckDBPyConnection, journey: str) -> int:
    row = con.execute(
        "select count(*) from nudge.journey_entries where journey = ? and status = 'active'",
        [journey],
    ).fetchone()
    return row[0] if row else 0
