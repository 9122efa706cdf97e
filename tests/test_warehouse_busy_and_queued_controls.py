"""The warehouse held by another process: opens wait, then say so; journey pause/resume requests
queued on disk meanwhile are applied, in order, by the next write open."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest

from nudge.core.warehouse.connection import WarehouseBusy, connect
from nudge.core.warehouse.journey_controls import (
    paused_journeys,
    pending_paused_journeys,
    request_control,
)
from nudge.core.warehouse.schema import ensure_tables
from tests.conftest import holding_warehouse

AT = datetime(2026, 1, 5, 12, 0)


def test_queued_requests_count_at_once_and_the_next_write_open_applies_them_in_order(
    tmp_path: Path,
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    with connect(warehouse) as con:
        ensure_tables(con)
    requests = tmp_path / "control_requests"
    request_control(requests, "drip", paused=True, at=AT)
    request_control(requests, "news", paused=True, at=AT)
    assert pending_paused_journeys(requests) == {"drip", "news"}
    request_control(requests, "news", paused=False, at=AT)
    assert pending_paused_journeys(requests) == {"drip"}  # the latest request counts

    with connect(warehouse, read_only=True) as con:  # reads leave the queue alone
        assert paused_journeys(con) == set()
    with connect(warehouse) as con:
        assert paused_journeys(con) == {"drip"}
        rows = con.execute("select journey, paused from nudge.journey_controls order by 1")
        assert rows.fetchall() == [("drip", True), ("news", False)]
    assert list(requests.iterdir()) == []
    assert pending_paused_journeys(requests) == frozenset()


def test_an_open_waits_for_a_held_warehouse_then_raises_warehouse_busy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    with connect(warehouse) as con:
        ensure_tables(con)
    with holding_warehouse(warehouse):
        monkeypatch.setenv("NUDGE_WAREHOUSE_WAIT_SECONDS", "0.5")
        started = time.monotonic()
        busy = pytest.raises(WarehouseBusy, match="another process holds the warehouse")
        with busy, connect(warehouse, read_only=True):
            pass
        assert 0.5 <= time.monotonic() - started < 30
    with connect(warehouse, read_only=True) as con:  # free again once the holder is gone
        assert con.execute("select count(*) from nudge.runs").fetchone() == (0,)
