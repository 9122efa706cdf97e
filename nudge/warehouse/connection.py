"""Open the warehouse for one stage and always close it.

DuckDB lets one process write a database file at a time, and a read-only open fails while a
writer holds the file (stack-notes.md). So no connection outlives the stage that opened it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb


@contextmanager
def connect(path: Path, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Yield a connection to the DuckDB file at ``path``, closed when the block ends."""
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    try:
        yield con
    finally:
        con.close()
