"""Open the warehouse for one stage and always close it.

DuckDB lets one process write a database file at a time, and a read-only open fails while a
writer holds the file. So no connection outlives the stage that opened it, and
an open that finds the file held retries for a few seconds (``NUDGE_WAREHOUSE_WAIT_SECONDS``,
default 5) before raising ``WarehouseBusy``, which the CLI turns into a sentence naming the run.

With ``NUDGE_WAREHOUSE=postgres`` the connection is a ``PostgresConnection`` (the same methods,
the same SQL transpiled: ``nudge.core.warehouse.postgres_connection``); no file is opened.

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
from typing import Any

import duckdb

from nudge.core.warehouse.journey_controls import apply_pending_requests
from nudge.core.warehouse.settings import (
    postgres_url,
    require_engine_warehouse,
    warehouse,
    without_password,
)
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
    """Yield a connection to the workspace's warehouse, closed when the block ends: the DuckDB
    file at ``path``, or with ``NUDGE_WAREHOUSE=postgres`` a ``PostgresConnection`` to
    ``NUDGE_POSTGRES_URL`` (``path``'s folder still holds the files kept beside the warehouse:
    queued journey controls, the handover journal). Any other warehouse is refused with a
    ``WarehouseSettingError`` saying nudge's own SQL does not run there."""
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    kind = require_engine_warehouse()
    con = _open_postgres(path) if kind == "postgres" else _open(path, read_only)
    try:
        if not read_only:
            apply_pending_requests(con, path.parent / CONTROL_REQUESTS_DIR)
        yield con
    finally:
        con.close()


def _open_postgres(path: Path) -> Any:
    from nudge.core.warehouse.postgres_connection import PostgresConnection

    return PostgresConnection(postgres_url(), file_path=path)


def warehouse_file(con: Any) -> Path | None:
    """The workspace's warehouse file of ``con``: DuckDB's database file, or the path a
    ``PostgresConnection`` was opened for; None for an in-memory DuckDB."""
    if not isinstance(con, duckdb.DuckDBPyConnection):
        return con.file_path
    row = con.execute(
        "select path from duckdb_databases() where database_name = current_database()"
    ).fetchone()
    return Path(row[0]) if row and row[0] else None


def warehouse_exists(path: Path) -> bool:
    """Whether the workspace's warehouse exists: the DuckDB file at ``path``, or with
    ``NUDGE_WAREHOUSE=postgres`` always (the server's database outlives workspaces; an empty one
    reads as having no runs)."""
    return warehouse() == "postgres" or path.exists()


def warehouse_location(path: Path) -> str:
    """Where the workspace's warehouse is, for people: the DuckDB file at ``path``, or the
    Postgres URL (without its password)."""
    if warehouse() == "postgres":
        return without_password(postgres_url())
    return str(path)


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
