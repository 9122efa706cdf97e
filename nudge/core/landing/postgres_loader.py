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


def load_new_files_postgres(con: Any, landing_dir: Path) -> LoadResult:
    """Copy every parquet file under ``landing_dir`` not yet in ``raw.loaded_files``."""
    ensure_postgres_tables(con)
    new = _not_yet_loaded(con, landing_files(landing_dir.resolve()))
    if not new:
        return LoadResult(files=0, rows=0)
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    parts = []
    counts = []
    for name, path in new.items():
        table = landing_columns(pq.read_table(path))
        table = table.append_column("landing_file", pa.array([name] * table.num_rows, pa.string()))
        table = table.append_column(
            "loaded_at", pa.array([loaded_at] * table.num_rows, pa.timestamp("us"))
        )
        parts.append(table)
        counts.append((name, table.num_rows, loaded_at))
    rows = pa.concat_tables(parts)
    columns = ", ".join(f'"{c}"' for c in rows.column_names)
    try:
        with con.cursor() as cursor:
            cursor.copy_expert(
                f"copy raw.events ({columns}) from stdin with (format csv)", _as_csv(rows)
            )
            cursor.executemany(
                "insert into raw.loaded_files (file_name, rows, loaded_at) values (%s, %s, %s)",
                counts,
            )
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return LoadResult(files=len(new), rows=rows.num_rows)


def load_manual_segments_postgres(con: Any, landing_dir: Path) -> LoadResult:
    """Copy every manual segment upload file not yet in ``raw.loaded_files``: its ids into
    ``raw.manual_segment_members``, one row per file (empty ones too) into
    ``raw.manual_segment_uploads``."""
    ensure_postgres_tables(con)
    new = _not_yet_loaded(con, upload_files(landing_dir.resolve()))
    if not new:
        return LoadResult(files=0, rows=0)
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    members = []
    uploads = []
    for name, path in new.items():
        ids = pq.read_table(path, columns=["user_id"]).column("user_id").drop_null()
        segment, uploaded_at = path.parent.name, upload_time(path)
        members.append(
            pa.table(
                {
                    "landing_file": pa.array([name] * len(ids), pa.string()),
                    "segment": pa.array([segment] * len(ids), pa.string()),
                    "user_id": ids,
                    "uploaded_at": pa.array([uploaded_at] * len(ids), pa.timestamp("us")),
                }
            )
        )
        uploads.append((name, segment, uploaded_at, len(ids), loaded_at))
    try:
        with con.cursor() as cursor:
            cursor.copy_expert(
                "copy raw.manual_segment_members (landing_file, segment, user_id, uploaded_at)"
                " from stdin with (format csv)",
                _as_csv(pa.concat_tables(members)),
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
