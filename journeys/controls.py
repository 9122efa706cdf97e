"""Pausing and resuming journeys: state kept in ``nudge.journey_controls``.

A paused journey does not run at all: nobody is admitted (triggers that fire while it is paused
are not kept for later), nobody moves or exits, and nothing is planned into the outbox. People
keep their place; on resume, the first run moves them on as if they had waited there, so a wait
that ran out during the pause is done at that run.
"""

from __future__ import annotations

from datetime import datetime

import duckdb


def set_paused(con: duckdb.DuckDBPyConnection, journey: str, *, paused: bool, at: datetime) -> None:
    """Pause (or resume) ``journey``; ``at`` (naive UTC) is when the change was made."""
    con.execute(
        """insert into nudge.journey_controls values (?, ?, ?)
           on conflict (journey) do update set
               paused = excluded.paused, changed_at = excluded.changed_at""",
        [journey, paused, at],
    )


def paused_journeys(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute("select journey from nudge.journey_controls where paused").fetchall()
    return {journey for (journey,) in rows}
