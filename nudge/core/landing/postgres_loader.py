"""Copy new landing files into ``raw.events`` and manual segment uploads into
``raw.manual_segment_*`` on PostgreSQL (stage 1 of a run there).

The same contract as ``nudge.core.landing.loader`` and ``nudge.core.segments.manual`` (DuckDB):
``raw.loaded_files`` remembers every file already copied, all new files go in with one ``COPY``
and the bookkeeping shares its transaction, so a failed load leaves nothing half-loaded. The parquet files are read by pyarrow
and streamed to the server as CSV (``COPY ... FROM STDIN``), which casts the JSON text columns to
``jsonb``.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from nudge.core.landing.loader import LoadResult, landing_files
from nudge.core.landing.messages import LANDING_COLUMNS
from nudge.core.landing.writer import LANDING_SCHEMA
from nudge.core.segments.manual import upload_files, upload_time
from nudge.core.warehouse.postgres import ensure_postgres_tables


def _not_yet_loaded(con: Any, found: dict[str, Path]) -> dict[str, Path]:
    if not found:
        return {}
    with con.cursor() as cursor:
        cursor.execute(
            "select file_name from raw.loaded_files where file_name = any(%s)", (list(found),)
        )
        loaded = {name for (name,) in cursor.fetchall()}
    return {name: path for name, path in found.items() if name not in loaded}


def _as_csv(table: pa.Table) -> io.BytesIO:
    buffer = io.BytesIO()
    pa_csv.write_csv(table, buffer, pa_csv.WriteOptions(include_header=False))
    buffer.seek(0)
    return buffer


def landing_columns(table: pa.Table) -> pa.Table:
    """The landing columns in order; a column an older file lacks is null (as DuckDB's
    ``union_by_name`` reads it)."""
    columns = [
        table.column(name)
        if name in table.column_names
        else pa.nulls(table.num_rows, LANDING_SCHEMA.field(name).type)
        for name in LANDING_COLUMNS
    ]
    return pa.table(columns, names=list(LANDING_COLUMNS))


def tagged_rows(
    new: dict[str, Path], read: Callable[[Path], pa.Table]
) -> tuple[pa.Table, list[tuple[str, int]]]:
    """The rows of every new file (name: path) as ``read`` gives them, each followed by a
    ``landing_file`` column naming its file, in one table; and each file's name and row count
    (what ``raw.loaded_files`` records). The Postgres and Spark loaders' shared first step."""
    parts = []
    counts = []
    for name, path in new.items():
        table = read(path)
        parts.append(
            table.append_column("landing_file", pa.array([name] * table.num_rows, pa.string()))
        )
        counts.append((name, table.num_rows))
    return pa.concat_tables(parts), counts


def load_new_files_postgres(con: Any, landing_dir: Path) -> LoadResult:
    """Copy every parquet file under ``landing_dir`` not yet in ``raw.loaded_files``."""
    ensure_postgres_tables(con)
    new = _not_yet_loaded(con, landing_files(landing_dir.resolve()))
    if not new:
        return LoadResult(files=0, rows=0)
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    rows, counts = tagged_rows(new, lambda path: landing_columns(pq.read_table(path)))
    rows = rows.append_column(
        "loaded_at", pa.array([loaded_at] * rows.num_rows, pa.timestamp("us"))
    )
    columns = ", ".join(f'"{c}"' for c in rows.column_names)
    try:
        with con.cursor() as cursor:
            cursor.copy_expert(
                f"copy raw.events ({columns}) from stdin with (format csv)", _as_csv(rows)
            )
            cursor.executemany(
                "insert into raw.loaded_files (file_name, rows, loaded_at) values (%s, %s, %s)",
                [(name, count, loaded_at) for name, count in counts],
            )
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return LoadResult(files=len(new), rows=rows.num_rows)


def _upload_members(path: Path) -> pa.Table:
    """An upload file's ids (nulls dropped) with its segment and the time its list takes effect."""
    ids = pq.read_table(path, columns=["user_id"]).column("user_id").drop_null()
    return pa.table(
        {
            "segment": pa.array([path.parent.name] * len(ids), pa.string()),
            "user_id": ids,
            "uploaded_at": pa.array([upload_time(path)] * len(ids), pa.timestamp("us")),
        }
    )


def load_manual_segments_postgres(con: Any, landing_dir: Path) -> LoadResult:
    """Copy every manual segment upload file not yet in ``raw.loaded_files``: its ids into
    ``raw.manual_segment_members``, one row per file (empty ones too) into
    ``raw.manual_segment_uploads``."""
    ensure_postgres_tables(con)
    new = _not_yet_loaded(con, upload_files(landing_dir.resolve()))
    if not new:
        return LoadResult(files=0, rows=0)
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    members, counts = tagged_rows(new, _upload_members)
    uploads = [
        (name, new[name].parent.name, upload_time(new[name]), count, loaded_at)
        for name, count in counts
    ]
    columns = ", ".join(members.column_names)
    try:
        with con.cursor() as cursor:
            cursor.copy_expert(
                f"copy raw.manual_segment_members ({columns}) from stdin with (format csv)",
                _as_csv(members),
            )
            cursor.executemany(
                "insert into raw.manual_segment_uploads"
                " (landing_file, segment, uploaded_at, members, loaded_at)"
                " values (%s, %s, %s, %s, %s)",
                uploads,
            )
            cursor.executemany(
                "insert into raw.loaded_files (file_name, rows, loaded_at) values (%s, %s, %s)",
                [(name, n, loaded_at) for name, _, _, n, _ in uploads],
            )
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return LoadResult(files=len(new), rows=sum(n for _, _, _, n, _ in uploads))
