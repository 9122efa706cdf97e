"""Open the warehouse for one stage and always close it.

DuckDB lets one process write a database file at a time, and a read-only open fails while a
writer holds the file. So no connection outlives the stage that opened it, and
an open that finds the file held retries for a few seconds (``NUDGE_WAREHOUSE_WAIT_SECONDS``,
default 5) before raising ``WarehouseBusy``, which the CLI turns into a sentence naming the run.

Opening the warehouse for writing first applies queued journey pause/resume requests
(``nudge.core.warehouse.journey_controls``), so every stage sees a pause made while another stage held the file.

DuckDB's default memory limit is 80% of RAM. nudge bounds it (``NUDGE_DUCKDB_MEMORY_LIMIT``,
default 3GB, read by dbt's profile too) so that large builds spill to disk next to the
database file instead of taking the machine.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from nudge.core.warehouse.journey_controls import apply_pending_requests
from nudge.core.warehouse.settings import require_duckdb_pipeline
from nudge.core.workspace import CONTROL_REQUESTS_DIR

DEFAULT_MEMORY_LIMIT = "3GB"
DEFAULT_WAIT_SECONDS = 5.0
# DuckDB's message when another process holds the file (IOException).
LOCK_CONFLICT = "Could not set lock on file"


class WarehouseBusy(Exception):
    """Another process held the warehouse file for longer than the wait."""

    def __init__(self, path: Path, waited: float):
        super().__init__(f"another process holds the warehouse {path} (waited {waited:g} s)")
        self.path = path


def memory_limit() -> str:
    """DuckDB's memory_limit for every nudge connection (``NUDGE_DUCKDB_MEMORY_LIMIT``)."""
    return os.environ.get("NUDGE_DUCKDB_MEMORY_LIMIT") or DEFAULT_MEMORY_LIMIT


def wait_seconds() -> float:
    """How long an open waits for another process to let go of the file."""
    return float(os.environ.get("NUDGE_WAREHOUSE_WAIT_SECONDS") or DEFAULT_WAIT_SECONDS)


def _open(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    wait = wait_seconds()
    deadline = time.monotonic() + wait
    while True:
        try:
            return duckdb.connect(
                str(path), read_only=read_only, config={"memory_limit": memory_limit()}
            )
        except duckdb.IOException as error:
            if LOCK_CONFLICT not in str(error):
                raise
            if time.monotonic() >= deadline:
                raise WarehouseBusy(path, wait) from None
            time.sleep(0.1)


@contextmanager
def connect(path: Path, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Yield a connection to the DuckDB file at ``path``, closed when the block ends.

    Refused while ``NUDGE_WAREHOUSE`` names another warehouse (``require_duckdb_pipeline``)."""
    require_duckdb_pipeline()
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = _open(path, read_only)
    try:
        if not read_only:
            apply_pending_requests(con, path.parent / CONTROL_REQUESTS_DIR)
        yield con
    finally:
        con.close()


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Commit on success, roll back on any error."""
    con.begin()
    try:
        yield
    except BaseException:
        con.rollback()
        raise
    con.commit()
