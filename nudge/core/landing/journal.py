"""An append-only journal of validated landing rows, fsync'ed per group, turned into landing files.

The HTTP collector acknowledges a request only once its rows are on disk. One fsync per request
would cap it at the disk's fsync rate, so requests that arrive while a write is under way are
written together with the next one (group commit): each group is one record of the current
journal segment, followed by one fsync. A segment is rotated (closed, a new one opened) after
enough rows or seconds, and a closed segment is turned into one landing file, published the way
every landing file is (``nudge.core.landing.staging``), then removed.

A record is one line ``<crc32 as 8 hex digits> <JSON array of rows>``. A writer killed in the
middle of a record leaves a line with no newline or a wrong checksum at the end of its segment:
that group was never acknowledged, and reading stops there. So a segment left by a killed
writer yields exactly the acknowledged rows.

A segment and its landing file share their name (``<stamp>-<uuid>.journal`` becomes
``<stamp>-<uuid>.parquet``): converting a segment again after a crash between publishing and
removing it finds the landing file already there and only removes the segment, so the loader
sees every acknowledged row exactly once.

Segments live in ``.journal/`` inside the events landing folder (hidden, so the loader never
reads them). The writer holds ``.journal/lock`` exclusively while it writes; whoever else gets
the lock (the loader, a restarted collector) converts the segments left behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
import uuid
import zlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from nudge.core.landing.durable import fsync_directory
from nudge.core.landing.messages import LANDING_COLUMNS
from nudge.core.landing.staging import staged_parts
from nudge.core.landing.writer import LANDING_SCHEMA

JOURNAL_DIR = ".journal"
SEGMENT_SUFFIX = ".journal"
_LOCK_NAME = "lock"
LOCK_WAIT_SECONDS = 10.0
_TIMESTAMP_INDEXES = (LANDING_COLUMNS.index("timestamp"), LANDING_COLUMNS.index("received_at"))
_EPOCH = datetime(1970, 1, 1)
_EPOCH_UTC = _EPOCH.replace(tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_IN_COLUMN_ORDER = itemgetter(*LANDING_COLUMNS)


class JournalBusy(RuntimeError):
    """Another live process writes this landing folder's journal."""


def micros(value: datetime) -> int:
    """A datetime as microseconds since the epoch (exact, unlike a float); a naive one is UTC."""
    return (value - (_EPOCH if value.tzinfo is None else _EPOCH_UTC)) // _MICROSECOND


def encode_row(row: dict[str, Any]) -> list[Any]:
    """A landing row as a JSON-ready list in ``LANDING_COLUMNS`` order."""
    encoded = list(_IN_COLUMN_ORDER(row))
    for i in _TIMESTAMP_INDEXES:
        if encoded[i] is not None:
            encoded[i] = micros(encoded[i])
    return encoded


def encode_record(rows: Sequence[list[Any]]) -> bytes:
    """One journal record (a group of encoded rows) as its line."""
    body = orjson.dumps(rows)
    return b"%08x %s\n" % (zlib.crc32(body), body)


def read_segment(path: Path) -> Iterator[list[Any]]:
    """Every encoded row of the complete records of a segment, stopping at a torn one."""
    data = path.read_bytes()
    for line in data.split(b"\n")[:-1]:  # the part after the last newline is torn
        if len(line) < 10 or line[8:9] != b" ":
            return
        body = line[9:]
        try:
            checksum = int(line[:8], 16)
        except ValueError:
            return
        if zlib.crc32(body) != checksum:
            return
        yield from orjson.loads(body)


def _table(rows: list[list[Any]]) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(LANDING_COLUMNS)
    return pa.Table.from_arrays(
        [pa.array(list(values), f.type) for values, f in zip(columns, LANDING_SCHEMA, strict=True)],
        schema=LANDING_SCHEMA,
    )


def publish_segment(
    landing_dir: Path, segment: Path, written: list[list[Any]] | None = None
) -> int:
    """Turn a closed segment into its landing file and remove it; return the rows published.
    ``written`` are the segment's rows as its writer appended them, when it still has them:
    they are then not read back from the file (which costs about as much as building the
    landing file itself).

    Safe to repeat: a landing file already published under the segment's name is kept as is.
    """
    final = landing_dir / (segment.name.removesuffix(SEGMENT_SUFFIX) + ".parquet")
    rows = 0
    if not final.exists():
        encoded = list(read_segment(segment)) if written is None else written
        rows = len(encoded)
        if encoded:
            with staged_parts(landing_dir) as staged:
                staged.write(_table(encoded))
                staged.publish(final.name)
    segment.unlink(missing_ok=True)  # published by another already: the same file
    fsync_directory(segment.parent)
    return rows


def _segments(journal_dir: Path) -> list[Path]:
    return sorted(journal_dir.glob(f"*{SEGMENT_SUFFIX}"))


def _open_lock(landing_dir: Path) -> int:
    journal_dir = landing_dir / JOURNAL_DIR
    journal_dir.mkdir(parents=True, exist_ok=True)
    return os.open(journal_dir / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)


def _lock_within(lock: int, seconds: float) -> bool:
    """Take ``lock`` exclusively, waiting at most ``seconds`` (a loader recovering segments
    holds it briefly; a live collector holds it for good)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


def recover_abandoned(landing_dir: Path) -> int:
    """Publish the segments a killed writer left, unless a writer is live; return the rows."""
    if not (landing_dir / JOURNAL_DIR).is_dir():
        return 0
    lock = _open_lock(landing_dir)
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0
        return sum(publish_segment(landing_dir, s) for s in _segments(landing_dir / JOURNAL_DIR))
    finally:
        os.close(lock)


class Journal:
    """The one writer of a landing folder's journal (hold it with ``open``/``close``).

    Not thread-safe: one caller at a time appends and rotates (the collector's commit loop).
    """

    def __init__(self, landing_dir: Path) -> None:
        self.landing_dir = landing_dir
        self.directory = landing_dir / JOURNAL_DIR
        self._lock: int | None = None
        self._file: int | None = None
        self.segment: Path | None = None
        self.rows = 0
        self.opened_at = 0.0

    def open(self) -> int:
        """Take the journal (``JournalBusy`` if another process has it), publish what an
        earlier writer left, and return the rows recovered."""
        self.landing_dir.mkdir(parents=True, exist_ok=True)
        lock = _open_lock(self.landing_dir)
        if not _lock_within(lock, LOCK_WAIT_SECONDS):
            os.close(lock)
            raise JournalBusy(
                f"another collector is writing into {self.landing_dir}; stop it first or give "
                "this one another workspace (--home)."
            ) from None
        self._lock = lock
        return sum(publish_segment(self.landing_dir, s) for s in _segments(self.directory))

    def append(self, rows: Sequence[list[Any]], now: float) -> None:
        """Write one group of encoded rows and fsync it: on return, the rows are durable."""
        if self._file is None:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
            self.segment = self.directory / f"{stamp}-{uuid.uuid4().hex}{SEGMENT_SUFFIX}"
            self._file = os.open(self.segment, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            fsync_directory(self.directory)
            self.opened_at = now
        record = memoryview(encode_record(rows))
        while record:
            written = os.write(self._file, record)
            record = record[written:]
        os.fdatasync(self._file)
        self.rows += len(rows)

    def rotate(self) -> Path | None:
        """Close the current segment (if any) and return it, for ``publish_segment``."""
        if self._file is None:
            return None
        with contextlib.suppress(OSError):  # the descriptor is released even when close fails
            os.close(self._file)
        closed, self._file, self.segment, self.rows = self.segment, None, None, 0
        return closed

    def close(self) -> None:
        """Publish the current segment and let the journal go."""
        closed = self.rotate()
        if closed is not None:
            publish_segment(self.landing_dir, closed)
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None
