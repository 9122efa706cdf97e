"""Copy new landing files into ``raw.events`` (stage 1 of a run).

Incremental: ``raw.loaded_files`` remembers every file already copied (by its path relative to
the landing folder), so a file is read once. All new files go in with one set-based insert, and
the insert and the bookkeeping share one transaction: a failed load leaves nothing half-loaded.
Hidden paths (a writer's staging folder, temporary files) are never read; what killed writers
left there is removed first (``nudge.core.landing.staging``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import duckdb

from nudge.core.clock import utc_now
from nudge.core.landing.journal import recover_abandoned
from nudge.core.landing.messages import LANDING_COLUMNS
from nudge.core.landing.staging import STAGING_DIR, is_old_temporary, remove_abandoned
from nudge.core.warehouse.schema import ensure_tables


@dataclass(frozen=True)
class LoadResult:
    files: int
    rows: int


def landing_files(landing_dir: Path) -> dict[str, Path]:
    """Every published landing file under ``landing_dir`` by its name relative to it, after
    removing abandoned staging folders from every folder writers stage in."""
    if not landing_dir.is_dir():
        return {}
    found: dict[str, Path] = {}
    for directory, folders, files in os.walk(landing_dir):
        here = Path(directory)
        old_temporaries = [name for name in files if is_old_temporary(name)]
        if STAGING_DIR in folders or old_temporaries:
            remove_abandoned(here, old_temporaries)
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        for name in sorted(files):
            if name.endswith(".parquet") and not name.startswith("."):
                found[(here / name).relative_to(landing_dir).as_posix()] = here / name
    return found


def not_yet_loaded(con: duckdb.DuckDBPyConnection, found: dict[str, Path]) -> dict[str, Path]:
    """The files of ``found`` (name -> path) that ``raw.loaded_files`` does not list yet."""
    if not found:
        return {}
    loaded = {
        name
        for (name,) in con.execute(
            "select file_name from raw.loaded_files where file_name in (select unnest(?))",
            [list(found)],
        ).fetchall()
    }
    return {name: path for name, path in found.items() if name not in loaded}


def load_new_files(con: duckdb.DuckDBPyConnection, landing_dir: Path) -> LoadResult:
    """Copy every parquet file under ``landing_dir`` not yet in ``raw.loaded_files``."""
    ensure_tables(con)
    recover_abandoned(landing_dir.resolve())
    new = not_yet_loaded(con, landing_files(landing_dir.resolve()))
    if not new:
        return LoadResult(files=0, rows=0)

    loaded_at = utc_now()
    quoted = [f'"{c}"' for c in LANDING_COLUMNS]
    columns = ", ".join(quoted)
    con.begin()
    try:
        con.execute(
            "create or replace temp table _landing_names as "
            "select unnest(?) as file_name, unnest(?) as path",
            [list(new), [str(p) for p in new.values()]],
        )
        con.execute(
            f"""
            insert into raw.events ({columns}, landing_file, loaded_at)
            select {", ".join(f"r.{c}" for c in quoted)}, n.file_name, ?
            from read_parquet(?, filename = true, union_by_name = true) r
            join _landing_names n on n.path = r.filename
            """,
            [loaded_at, [str(p) for p in new.values()]],
        )
        # Row counts come from the parquet footers: no second pass over raw.events.
        con.execute(
            """
            insert into raw.loaded_files (file_name, rows, loaded_at)
            select n.file_name, m.num_rows, ?
            from _landing_names n
            join parquet_file_metadata(?) m on m.file_name = n.path
            """,
            [loaded_at, [str(p) for p in new.values()]],
        )
        rows = con.execute(
            "select coalesce(sum(rows), 0) from raw.loaded_files "
            "where file_name in (select file_name from _landing_names)"
        ).fetchone()[0]
        con.execute("drop table _landing_names")
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return LoadResult(files=len(new), rows=int(rows))
