"""One landing call's parquet parts, written out of the loader's sight and published at once.

A landing call writes its parts into its own folder under ``.staging/`` in the landing folder
(the loader never reads hidden paths) and publishes them with one rename into the landing folder:
a single part becomes the file ``<name>``, several parts the folder ``<name>`` holding them. So
the loader sees all of a call's rows or none of them, however the call ends.

A staging folder outlives its writer only when the writer was killed. Writers hold a shared lock
on ``.staging/lock`` while they stage; whoever gets it exclusively (without waiting) knows no
writer is staging there, so every staging folder left is abandoned and is removed. Writers do
this before they stage, and the loader before it reads (the loader also removes the
``.<name>.parquet.tmp`` files earlier versions left, which it sees while listing the files).
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from nudge.core.landing.durable import fsync_directory

STAGING_DIR = ".staging"
_LOCK_NAME = "lock"
_TEMPORARY_NAME = re.compile(r"\..+\.parquet\.tmp")


def is_old_temporary(name: str) -> bool:
    """Whether ``name`` is a temporary file of an earlier writer (``.<name>.parquet.tmp``)."""
    return _TEMPORARY_NAME.fullmatch(name) is not None


def _open_lock(landing_dir: Path) -> int:
    (landing_dir / STAGING_DIR).mkdir(exist_ok=True)
    return os.open(landing_dir / STAGING_DIR / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)


def _try_exclusive(lock: int) -> bool:
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _remove_abandoned(landing_dir: Path) -> None:
    """Remove every staging folder; the caller holds the lock exclusively."""
    for entry in (landing_dir / STAGING_DIR).iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)


def remove_abandoned(landing_dir: Path, old_temporaries: Iterable[str] = ()) -> None:
    """Remove what killed writers left in ``landing_dir`` (staging folders, and the named
    temporary files of earlier versions), unless a writer is staging there now (then a later
    caller does it)."""
    lock = _open_lock(landing_dir)
    try:
        if _try_exclusive(lock):
            _remove_abandoned(landing_dir)
            for name in old_temporaries:
                (landing_dir / name).unlink(missing_ok=True)
    finally:
        os.close(lock)


class StagedParts:
    """The parts of one landing call, in its staging folder until ``publish``."""

    def __init__(self, landing_dir: Path, staging: Path) -> None:
        self.landing_dir = landing_dir
        self.staging = staging
        self.parts: list[Path] = []

    def write(self, table: pa.Table) -> None:
        part = self.staging / f"part-{len(self.parts):05d}.parquet"
        with open(part, "wb") as sink:
            pq.write_table(table, sink, compression="zstd")
            sink.flush()
            os.fsync(sink.fileno())
        self.parts.append(part)

    def publish(self, name: str) -> list[Path]:
        """Make every part visible under ``name`` with one rename, durably; return their paths."""
        final = self.landing_dir / name
        if len(self.parts) == 1:
            os.rename(self.parts[0], final)
            published = [final]
        else:
            fsync_directory(self.staging)
            os.rename(self.staging, final)
            published = [final / part.name for part in self.parts]
        fsync_directory(self.landing_dir)
        self.parts = []
        return published


@contextmanager
def staged_parts(landing_dir: Path) -> Iterator[StagedParts]:
    """A fresh folder under ``landing_dir/.staging``, removed on exit with whatever was not
    published; abandoned ones are removed first when no other writer is staging."""
    lock = _open_lock(landing_dir)
    try:
        if _try_exclusive(lock):
            _remove_abandoned(landing_dir)
        fcntl.flock(lock, fcntl.LOCK_SH)
        staging = landing_dir / STAGING_DIR / uuid.uuid4().hex
        staging.mkdir()
        try:
            yield StagedParts(landing_dir, staging)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    finally:
        os.close(lock)
