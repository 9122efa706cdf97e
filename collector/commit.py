"""Group commit: the rows of concurrent requests share one journal write and one fsync.

A request hands its encoded rows to ``GroupCommitter.commit`` and waits. One flush at a time
runs on the journal's own thread; rows handed over while it runs wait for the next flush, which
takes all of them. So under load a flush carries many requests, and an idle collector answers
after a single fsync. Segments are rotated after ``rotate_rows`` rows or ``rotate_seconds`` and
published as landing files on a second thread, so a slow parquet write never delays an answer.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from nudge.core.landing.journal import Journal, publish_segment

log = logging.getLogger(__name__)


class CommitFailed(RuntimeError):
    """The rows could not be written durably (a disk error): nothing was acknowledged."""


class GroupCommitter:
    def __init__(
        self, landing_dir: Path, *, rotate_rows: int = 50_000, rotate_seconds: float = 1.0
    ) -> None:
        self.journal = Journal(landing_dir)
        self.rotate_rows = rotate_rows
        self.rotate_seconds = rotate_seconds
        self._rows: list[list[Any]] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._flushing: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="journal-write")
        self._publisher = ThreadPoolExecutor(1, thread_name_prefix="journal-publish")
        self.flushes = 0
        self.recovered = 0
        self._opened = False
        # The rows durable in the open segment, handed to its publishing so that it need not
        # read them back; only rows whose append returned (fsync'ed) are here.
        self._segment_rows: list[list[Any]] = []
        self._unpublished: list[Path] = []
        self._unpublished_lock = threading.Lock()

    def open(self) -> int:
        """Take the journal (``JournalBusy`` if another collector has it) and publish what a
        killed collector left; return the rows recovered."""
        self.recovered = self.journal.open()
        self._opened = True
        return self.recovered

    async def start(self) -> None:
        """Open the journal unless done already; rotate old segments from now on."""
        if not self._opened:
            await asyncio.get_running_loop().run_in_executor(self._writer, self.open)
        self._ticker = asyncio.create_task(self._rotate_when_old())

    async def stop(self) -> None:
        """Finish the flush under way, publish the open segment, let the journal go.

        The segments handed to the publishing thread are published before the journal's lock
        is let go: a loader or a new collector taking the lock publishes what it finds, and
        would otherwise publish a segment this one is still publishing."""
        if self._ticker is not None:
            self._ticker.cancel()
        if self._flushing is not None:
            await asyncio.shield(self._flushing)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._writer, lambda: None)  # a rotation under way ends
        await loop.run_in_executor(None, partial(self._publisher.shutdown, wait=True))
        await loop.run_in_executor(self._writer, self.journal.close)
        self._writer.shutdown(wait=True)

    async def commit(self, rows: list[list[Any]]) -> None:
        """Return once ``rows`` are durable in the journal; ``CommitFailed`` if they are not."""
        if not rows:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._rows.extend(rows)
        self._waiters.append(waiter)
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush_while_waiting())
        await waiter

    async def _flush_while_waiting(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiters:
            rows, waiters = self._rows, self._waiters
            self._rows, self._waiters = [], []
            try:
                await loop.run_in_executor(self._writer, self._write, rows)
            except OSError as exc:
                log.exception("journal write failed")
                failure = CommitFailed(f"the collector could not write to disk: {exc}")
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_exception(failure)
                continue
            self.flushes += 1
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def _write(self, rows: list[list[Any]]) -> None:
        now = time.monotonic()
        try:
            self.journal.append(rows, now)
        except OSError:
            # The failed record may be half written; a record after it would never be read, so
            # later groups go to a new segment (this one keeps what was acknowledged before).
            self._rotate()
            raise
        self._segment_rows.extend(rows)
        if self.journal.rows >= self.rotate_rows:
            self._rotate()

    def _rotate(self) -> None:
        closed = self.journal.rotate()
        written, self._segment_rows = self._segment_rows, []
        if closed is not None:
            self._publisher.submit(self._publish, closed, written)

    def _rotate_if_old(self) -> None:
        age = time.monotonic() - self.journal.opened_at
        if self.journal.segment is not None and age >= self.rotate_seconds:
            self._rotate()
        self._retry_unpublished()

    def _publish(self, segment: Path, written: list[list[Any]] | None = None) -> None:
        try:
            publish_segment(self.journal.landing_dir, segment, written)
        except Exception:  # the segment stays on disk and is tried again at the next rotation
            log.exception("publishing %s failed; it is tried again", segment)
            with self._unpublished_lock:
                self._unpublished.append(segment)

    def _retry_unpublished(self) -> None:
        with self._unpublished_lock:
            retry, self._unpublished = self._unpublished, []
        for segment in retry:
            self._publisher.submit(self._publish, segment)

    async def _rotate_when_old(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.rotate_seconds / 2)
            await loop.run_in_executor(self._writer, self._rotate_if_old)
