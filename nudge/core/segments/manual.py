"""Manual segments: lists of user ids uploaded from CSV, kept as data in the landing area.

An upload (``nudge segments upload NAME FILE``) writes one parquet file,
``landing/manual_segments/<name>/<UTC yyyymmddTHHMMSSffffff>-<uuid4 hex>.parquet`` with columns
``segment``, ``user_id``, ``uploaded_at`` (the name's timestamp is ``uploaded_at``), to a
temporary name and renames it into place, like event landing files. Nothing is overwritten: the
members of a manual segment at ``as_of`` are the ids of its latest upload at or before ``as_of``
(an upload with no ids empties it), so membership history and time travel work as for any
segment. Only ids of known, non-deleted users at ``as_of`` are members.

The loader stage copies new upload files into ``raw.manual_segment_uploads`` (one row per file,
also for empty ones) and ``raw.manual_segment_members``; dbt exposes them as
``staging.stg_manual_segment_members`` and one generated ``segments.<name>`` model per manual
segment. Manual segment names exist only as data: validation and the dbt assembly learn them from
the landing area (every folder under ``landing/manual_segments/`` holding an upload file), so a
name is usable in ``in_segment`` and ``segment_entered`` from its first upload on.
"""

from __future__ import annotations

import csv
import re
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from nudge.core.clock import utc_now
from nudge.core.landing.durable import replace_durably
from nudge.core.landing.loader import LoadResult, not_yet_loaded
from nudge.core.warehouse.schema import ensure_tables
from nudge.core.workspace import Workspace

USER_ID_COLUMN = "user_id"
# Loaded file names are recorded in raw.loaded_files under this prefix (events use bare names).
LOADED_PREFIX = "manual_segments/"
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_STAMP = "%Y%m%dT%H%M%S%f"
_SCHEMA = pa.schema(
    [
        ("segment", pa.string()),
        ("user_id", pa.string()),
        ("uploaded_at", pa.timestamp("us")),
    ]
)


class ManualSegmentError(ValueError):
    """A manual segment upload that cannot be used (bad name, bad CSV, name taken)."""


@dataclass(frozen=True)
class Upload:
    segment: str
    members: int
    path: Path
    uploaded_at: datetime


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ManualSegmentError(
            f"manual segment name {name!r} must match [a-z][a-z0-9_]* "
            "(lower-case letter first, then lower-case letters, digits or _)"
        )
    return name


def read_member_ids(path: Path) -> list[str]:
    """The distinct ids of the ``user_id`` column of a CSV file (surrounding spaces removed).

    Raises ``ManualSegmentError`` naming the file, and the line of every empty id.
    """
    if not path.is_file():
        raise ManualSegmentError(f"{path}: no such file")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        # strict: a quote left open is an error, not one id swallowing the rest of the file.
        reader = csv.DictReader(handle, strict=True)
        ids: dict[str, None] = {}
        empty: list[int] = []
        try:
            columns = reader.fieldnames or []
            if USER_ID_COLUMN not in columns:
                found = ", ".join(repr(c) for c in columns) or "none (the file is empty)"
                raise ManualSegmentError(
                    f"{path}: no {USER_ID_COLUMN!r} column in the header line; found {found}. "
                    f"The first line must name the columns, one of them {USER_ID_COLUMN}."
                )
            for row in reader:
                value = (row.get(USER_ID_COLUMN) or "").strip()
                if value:
                    ids[value] = None
                else:
                    empty.append(reader.line_num)
        except UnicodeDecodeError:
            raise ManualSegmentError(f"{path}: not UTF-8 text; save it as UTF-8 CSV") from None
        except csv.Error as error:
            # "unexpected end of data": a quote opened and never closed.
            raise ManualSegmentError(f"{path}: not a valid CSV file ({error})") from None
    if empty:
        lines = ", ".join(map(str, empty[:10])) + (" ..." if len(empty) > 10 else "")
        raise ManualSegmentError(
            f"{path}: empty {USER_ID_COLUMN} on line{'s' if len(empty) > 1 else ''} {lines}; "
            "every row needs a user id (remove blank rows)"
        )
    return list(ids)


def upload_manual_segment(
    workspace: Workspace,
    name: str,
    csv_path: Path,
    *,
    uploaded_at: datetime | None = None,
    taken_names: Collection[str] = (),
) -> Upload:
    """Land ``csv_path``'s ids as the new member list of manual segment ``name``.

    ``uploaded_at`` (naive UTC; default now) is when the list takes effect. ``taken_names`` are
    the YAML and SQL segments: a manual segment may not share a name with one of them.
    """
    check_name(name)
    if name in taken_names:
        raise ManualSegmentError(
            f"segment {name!r} is already defined in YAML or as a SQL model; "
            "choose another name for the manual segment"
        )
    ids = read_member_ids(csv_path)
    moment = uploaded_at or utc_now()
    folder = workspace.manual_segments_landing_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{moment.strftime(_STAMP)}-{uuid.uuid4().hex}.parquet"
    table = pa.table(
        {"segment": [name] * len(ids), "user_id": ids, "uploaded_at": [moment] * len(ids)},
        schema=_SCHEMA,
    )
    encoded = pa.BufferOutputStream()
    pq.write_table(table, encoded)
    # Synced before it takes its name, and the name synced: what the upload reported stays
    # whole after a power loss (a torn file would stop every later run's read).
    replace_durably(final, [encoded.getvalue().to_pybytes()])
    return Upload(segment=name, members=len(ids), path=final, uploaded_at=moment)


def upload_files(landing_dir: Path) -> dict[str, Path]:
    """Every finished upload file by its ``raw.loaded_files`` name."""
    if not landing_dir.is_dir():
        return {}
    return {
        LOADED_PREFIX + path.relative_to(landing_dir).as_posix(): path
        for path in sorted(landing_dir.glob("*/*.parquet"))
        if path.is_file() and _NAME.fullmatch(path.parent.name)
    }


def manual_segment_names(workspace: Workspace) -> set[str]:
    """Every manual segment with at least one upload in the landing area."""
    return {
        path.parent.name for path in upload_files(workspace.manual_segments_landing_dir).values()
    }


def upload_time(path: Path) -> datetime:
    """When an upload file's list takes effect: the timestamp its name starts with."""
    return datetime.strptime(path.name.split("-", 1)[0], _STAMP)


def load_manual_segments(con: duckdb.DuckDBPyConnection, landing_dir: Path) -> LoadResult:
    """Copy every upload file not yet loaded into ``raw.manual_segment_*``, in one transaction."""
    ensure_tables(con)
    new = not_yet_loaded(con, upload_files(landing_dir.resolve()))
    if not new:
        return LoadResult(files=0, rows=0)
    names, paths = list(new), [str(p) for p in new.values()]
    segments = [p.parent.name for p in new.values()]
    stamps = [upload_time(p) for p in new.values()]
    loaded_at = utc_now()
    con.begin()
    try:
        con.execute(
            "create or replace temp table _manual_files as select unnest(?) as file_name, "
            "unnest(?) as path, unnest(?) as segment, unnest(?) as uploaded_at",
            [names, paths, segments, stamps],
        )
        con.execute(
            """
            insert into raw.manual_segment_members (landing_file, segment, user_id, uploaded_at)
            select f.file_name, f.segment, r.user_id, f.uploaded_at
            from read_parquet(?, filename = true) r
            join _manual_files f on f.path = r.filename
            where r.user_id is not null
            """,
            [paths],
        )
        con.execute(
            """
            insert into raw.manual_segment_uploads
                (landing_file, segment, uploaded_at, members, loaded_at)
            select f.file_name, f.segment, f.uploaded_at, m.num_rows, ?
            from _manual_files f
            join parquet_file_metadata(?) m on m.file_name = f.path
            """,
            [loaded_at, paths],
        )
        con.execute(
            "insert into raw.loaded_files (file_name, rows, loaded_at) "
            "select landing_file, members, loaded_at from raw.manual_segment_uploads "
            "where landing_file in (select file_name from _manual_files)"
        )
        rows = con.execute(
            "select coalesce(sum(members), 0) from raw.manual_segment_uploads "
            "where landing_file in (select file_name from _manual_files)"
        ).fetchone()[0]
        con.execute("drop table _manual_files")
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return LoadResult(files=len(new), rows=int(rows))


def manual_segment_model_sql(name: str) -> str:
    """The dbt model of manual segment ``name``: its latest upload's ids that are known users."""
    check_name(name)
    return "\n".join(
        [
            "{{ config(meta={'segment_kind': 'manual'}) }}",
            f"-- Manual segment {name}: the latest upload at or before as_of",
            "-- (nudge segments upload), limited to known, non-deleted users. Generated; do not edit.",
            "select distinct m.user_id",
            "from {{ ref('stg_manual_segment_members') }} m",
            "join {{ ref('dim_users') }} u on u.user_id = m.user_id",
            f"where m.segment = '{name}'",
            "",
        ]
    )


def manual_segment_models(
    workspace: Workspace, taken_names: Collection[str] = ()
) -> dict[str, str]:
    """Model text of every manual segment in the landing area, keyed by name.

    A name that is also a YAML or SQL segment (``taken_names``) is an error naming both.
    """
    names = manual_segment_names(workspace)
    clash = sorted(names & set(taken_names))
    if clash:
        raise ManualSegmentError(
            f"manual segment{'s' if len(clash) > 1 else ''} {', '.join(clash)} "
            f"(uploaded under {workspace.manual_segments_landing_dir}) also defined in YAML or "
            "as a SQL model: rename the definition or remove the upload folder"
        )
    return {name: manual_segment_model_sql(name) for name in sorted(names)}
