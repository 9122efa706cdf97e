"""Open the warehouse for one stage and always close it.

DuckDB lets one process write a database file at a time, and a read-only open fails while a
writer holds the file (stack-notes.md). So no connection outlives the stage that opened it.

DuckDB's default memory limit is 80% of RAM. nudge bounds it (``NUDGE_DUCKDB_MEMORY_LIMIT``,
default 3GB, read by dbt's profile too) so that large builds spill to disk next to the
database file instead of taking the machine.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

DEFAULT_MEMORY_LIMIT = "3GB"


def memory_limit() -> str:
    """DuckDB's memory_limit for every nudge connection (``NUDGE_DUCKDB_MEMORY_LIMIT``)."""
    return os.environ.get("NUDGE_DUCKDB_MEMORY_LIMIT") or DEFAULT_MEMORY_LIMIT


@contextmanager
def connect(path: Path, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Yield a connection to the DuckDB file at ``path``, closed when the block ends."""
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only, config={"memory_limit": memory_limit()})
    try:
        yield con
    finally:
        con.close()
