"""A 2xx from the collector means the messages are on disk: SIGKILL loses none, doubles none."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests

from nudge.core.landing.journal import (
    JOURNAL_DIR,
    Journal,
    encode_record,
    encode_row,
    publish_segment,
    read_segment,
)
from nudge.core.landing.loader import load_new_files
from nudge.core.landing.messages import normalise_message
from tests.conftest import CollectorProcess

WRITE_KEY = "test-write-key"


def loaded_ids(landing_dir: Path, database: Path) -> Counter[str]:
    with duckdb.connect(str(database)) as con:
        load_new_files(con, landing_dir)
        return Counter(m for (m,) in con.execute("select message_id from raw.events").fetchall())


def send_until_stopped(url: str, stop: threading.Event, acknowledged: list[str]) -> None:
    """Post single messages and 20-message batches; record the ids of acknowledged ones."""
    session = requests.Session()
    session.auth = (WRITE_KEY, "")
    single = True
    while not stop.is_set():
        ids = [uuid.uuid4().hex for _ in range(1 if single else 20)]
        batch = [{"type": "track", "userId": "u", "event": "e", "messageId": i} for i in ids]
        try:
            if single:
                answer = session.post(f"{url}/v1/track", json=batch[0], timeout=5)
            else:
                answer = session.post(f"{url}/v1/batch", json={"batch": batch}, timeout=5)
        except requests.RequestException:
            return  # the collector was killed
        if answer.status_code == 200:
            acknowledged.extend(ids)
        single = not single


@pytest.mark.slow
@pytest.mark.parametrize("restart", [True, False], ids=["restarted", "loader-recovers"])
def test_sigkill_during_concurrent_load_loses_and_doubles_nothing_acknowledged(
    collector: CollectorProcess, tmp_path: Path, restart: bool
) -> None:
    stop = threading.Event()
    acknowledged: list[str] = []
    senders = [
        threading.Thread(target=send_until_stopped, args=(collector.url, stop, acknowledged))
        for _ in range(8)
    ]
    for sender in senders:
        sender.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 2000 and time.monotonic() < deadline:
        time.sleep(0.05)
    collector.stop(signal.SIGKILL)
    stop.set()
    for sender in senders:
        sender.join()
    assert len(acknowledged) >= 2000

    if restart:  # the restarted collector publishes what the killed one acknowledged
        collector.start()
        collector.stop(signal.SIGTERM)
    found = loaded_ids(collector.home / "landing" / "events", tmp_path / "check.duckdb")
    assert set(acknowledged) <= set(found), f"{len(set(acknowledged) - set(found))} lost"
    assert [m for m, n in found.items() if n > 1] == []
    assert not list((collector.home / "landing" / "events" / JOURNAL_DIR).glob("*.journal"))


def rows(*ids: str) -> list[list[object]]:
    received = datetime(2026, 1, 1)
    return [
        encode_row(
            normalise_message(
                {"type": "track", "userId": "u", "event": "e", "messageId": i}, received
            )
        )
        for i in ids
    ]


def test_a_torn_record_at_the_end_of_a_segment_is_not_read(tmp_path: Path) -> None:
    segment = tmp_path / "s.journal"
    whole = encode_record(rows("a", "b")) + encode_record(rows("c"))
    torn = encode_record(rows("d"))
    segment.write_bytes(whole + torn[:-5])
    assert [r[0] for r in read_segment(segment)] == ["a", "b", "c"]
    segment.write_bytes(whole + torn[:-1])  # all but the newline
    assert [r[0] for r in read_segment(segment)] == ["a", "b", "c"]
    segment.write_bytes(whole + torn.replace(b'"d"', b'"x"'))  # checksum no longer matches
    assert [r[0] for r in read_segment(segment)] == ["a", "b", "c"]


def test_publishing_a_segment_twice_lands_its_rows_once(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    journal = Journal(landing)
    journal.open()
    journal.append(rows("a", "b"), now=0.0)
    segment = journal.rotate()
    assert segment is not None
    copy = segment.read_bytes()
    assert publish_segment(landing, segment) == 2
    segment.write_bytes(copy)  # as if killed after publishing, before removing the segment
    assert publish_segment(landing, segment) == 0
    journal.close()
    assert loaded_ids(landing, tmp_path / "w.duckdb") == Counter({"a": 1, "b": 1})


def test_after_a_failed_disk_write_later_groups_still_land(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk error cannot be made on demand here: one write stops half way and fails."""
    import asyncio

    from collector.commit import CommitFailed, GroupCommitter

    real_write = os.write
    failures = iter([True])

    def failing_once(descriptor: int, data: bytes) -> int:
        if next(failures, False):
            real_write(descriptor, bytes(data[: len(data) // 2]))
            raise OSError(28, "No space left on device")
        return real_write(descriptor, data)

    async def commit_three() -> list[str]:
        committer = GroupCommitter(tmp_path / "landing")
        await committer.start()
        outcomes = []
        for ids in (("a",), ("b",), ("c",)):
            try:
                await committer.commit(rows(*ids))
                outcomes.append("ok")
            except CommitFailed:
                outcomes.append("failed")
            if ids == ("a",):
                monkeypatch.setattr(os, "write", failing_once)
        await committer.stop()
        return outcomes

    assert asyncio.run(commit_three()) == ["ok", "failed", "ok"]
    found = loaded_ids(tmp_path / "landing", tmp_path / "w.duckdb")
    assert found["a"] == 1 and found["c"] == 1  # acknowledged: landed once
    assert found["b"] == 0  # half written, never acknowledged


def test_a_segment_that_failed_to_publish_is_published_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk cannot be made on demand here: the first publication fails."""
    import asyncio

    import collector.commit

    real_publish = collector.commit.publish_segment
    failures = iter([True])

    def failing_once(landing_dir: Path, segment: Path, written: Any = None) -> int:
        if next(failures, False):
            raise OSError(28, "No space left on device")
        return real_publish(landing_dir, segment, written)

    monkeypatch.setattr(collector.commit, "publish_segment", failing_once)
    landing = tmp_path / "landing"

    async def commit_and_wait() -> None:
        committer = collector.commit.GroupCommitter(landing, rotate_seconds=0.2)
        await committer.start()
        await committer.commit(rows("a", "b"))
        deadline = time.monotonic() + 10
        while not list(landing.glob("*.parquet")) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await committer.stop()

    asyncio.run(commit_and_wait())
    assert next(failures, None) is None  # the first try failed
    assert [p.suffix for p in landing.iterdir() if not p.name.startswith(".")] == [".parquet"]
    assert loaded_ids(landing, tmp_path / "w.duckdb") == Counter({"a": 1, "b": 1})


def test_a_stopping_collector_finishes_publishing_before_it_lets_the_journal_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A loader taking the journal's lock publishes the segments it finds: one still being
    published by the stopping collector would be published by both (a slow disk is stood in
    for by a pause in the publishing thread)."""
    import asyncio

    import collector.commit

    real_publish = collector.commit.publish_segment
    events: list[str] = []

    def slow_publish(landing_dir: Path, segment: Path, written: Any = None) -> int:
        time.sleep(0.5)
        published = real_publish(landing_dir, segment, written)
        events.append("published")
        return published

    real_close = Journal.close

    def close(journal: Journal) -> None:
        events.append("lock let go")  # the closing publishes the open segment itself
        real_close(journal)

    monkeypatch.setattr(collector.commit, "publish_segment", slow_publish)
    monkeypatch.setattr(Journal, "close", close)
    landing = tmp_path / "landing"

    async def commit_and_stop() -> None:
        committer = collector.commit.GroupCommitter(landing, rotate_rows=1)
        await committer.start()
        await committer.commit(rows("a"))  # one row: the segment rotates to the publisher
        await committer.stop()

    asyncio.run(commit_and_stop())
    assert events == ["published", "lock let go"]
    assert loaded_ids(landing, tmp_path / "w.duckdb") == Counter({"a": 1})
