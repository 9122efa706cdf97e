"""Named locks on the warehouse, for work that two steps of one run may reach at once.

On DuckDB one process writes the file at a time (the Dagster ``duckdb`` pool), so a lock has
nothing to guard and costs nothing. On a server warehouse independent steps run concurrently
(journeys, one sender per channel: ``docs/warehouses.md``); what they share is guarded here by a
Postgres session-level advisory lock named after the work, held for the block. The lock dies with
the connection, so a killed step never leaves it behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import duckdb

# The names in use, one per shared piece of work.
MERGES = "nudge.journeys.follow_merges"
DELIVERY_INPUTS = "nudge.delivery.fold_inputs"
CROSS_CHANNEL_CAPS = "nudge.delivery.cross_channel_caps"
JOURNEY_CONTROLS = "nudge.journey_controls.apply_requests"


@contextmanager
def exclusive(con: Any, name: str) -> Iterator[None]:
    """Hold the warehouse lock ``name`` for the block (waiting for another holder to let go)."""
    if isinstance(con, duckdb.DuckDBPyConnection):
        yield
        return
    with con.advisory_lock(name):
        yield
