"""Writing ``nudge.journey_transitions`` rows, numbered by ``seq`` in a fixed order.

Every statement that records transitions goes through :func:`record_transitions`: its rows get
``seq`` values after the table's current maximum, ordered by entry id (then action and target),
so the same runs over the same data number the same rows the same way, byte for byte.
"""

from __future__ import annotations

from typing import Any

from journeys.context import JourneyRun

TRANSITION_COLUMNS = "run_id, as_of, entry_id, journey, user_id, from_step, to_step, action, detail"


def record_transitions(run: JourneyRun, select_sql: str, params: list[Any] | None = None) -> None:
    """Insert the rows of ``select_sql`` (returning :data:`TRANSITION_COLUMNS`) with their seq.

    The table's maximum is read once per journey run; the run is the only writer of its
    journey's rows meanwhile. Journeys planned concurrently (server warehouse) may number from the
    same maximum: ``seq`` then orders each journey's transitions, not those of two journeys of
    one run (nothing reads that order: ``explain`` reads one journey).
    """
    if run.last_seq is None:
        run.last_seq = run.scalar("select coalesce(max(seq), 0) from nudge.journey_transitions")
    inserted = run.scalar(
        f"""insert into nudge.journey_transitions ({TRANSITION_COLUMNS}, seq)
            select t.*,
                   ? + row_number() over (order by t.entry_id, t.action, t.to_step nulls first)
            from ({select_sql}) t({TRANSITION_COLUMNS})""",
        [run.last_seq, *(params or [])],
    )
    run.last_seq += inserted
