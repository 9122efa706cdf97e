"""Write validated messages into the landing area as parquet files, atomically.

Writers (the HTTP collector, the CLI, the scenario runner) never open the warehouse: DuckDB
allows one writer process at a time, so they append files here and the loader copies them in.
A file is written under a temporary name that the loader ignores and renamed into place, so the
loader never sees half a file.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from nudge.landing.messages import LANDING_COLUMNS, InvalidMessage, normalise_message

ROWS_PER_FILE = 100_000

LANDING_SCHEMA = pa.schema(
    [
        pa.field("message_id", pa.string(), nullable=False),
        pa.field("type", pa.string(), nullable=False),
        pa.field("user_id", pa.string()),
        pa.field("anonymous_id", pa.string()),
        pa.field("previous_id", pa.string()),
        pa.field("group_id", pa.string()),
        pa.field("event", pa.string()),
        pa.field("name", pa.string()),
        pa.field("timestamp", pa.timestamp("us")),
        pa.field("received_at", pa.timestamp("us")),
        pa.field("properties", pa.string()),
        pa.field("traits", pa.string()),
        pa.field("context", pa.string()),
    ]
)
assert tuple(LANDING_SCHEMA.names) == LANDING_COLUMNS


@dataclass(frozen=True)
class Rejection:
    """A message that was not landed. ``index`` is its 0-based position in the input, or its
    1-based line number for NDJSON input."""

    index: int
    message_id: str | None
    reason: str


@dataclass
class LandResult:
    accepted: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def landing_file_name(now: datetime | None = None) -> str:
    """``<UTC yyyymmddTHHMMSSffffff>-<uuid4 hex>.parquet``: sortable by landing time, unique."""
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%S%f")
    return f"{stamp}-{uuid.uuid4().hex}.parquet"


def _write_file(landing_dir: Path, rows: list[dict[str, Any]]) -> Path:
    table = pa.Table.from_pylist(rows, schema=LANDING_SCHEMA)
    final = landing_dir / landing_file_name()
    # The temporary name does not end in .parquet, so the loader never picks it up.
    temporary = landing_dir / f".{final.name}.tmp"
    try:
        with open(temporary, "wb") as sink:
            pq.write_table(table, sink, compression="zstd")
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)
    return final


def _message_id(msg: Any) -> str | None:
    if isinstance(msg, Mapping):
        value = msg.get("messageId")
        if isinstance(value, str | int) and not isinstance(value, bool):
            return str(value)
    return None


def _land(
    landing_dir: Path,
    items: Iterable[tuple[int, Any]],
    received_at: datetime | None,
) -> LandResult:
    """Validate ``(index, message_or_rejection)`` pairs and write the valid ones in chunks."""
    landing_dir.mkdir(parents=True, exist_ok=True)
    received = received_at or datetime.now(UTC)
    result = LandResult()
    rows: list[dict[str, Any]] = []
    for index, item in items:
        if isinstance(item, Rejection):
            result.rejected.append(item)
            continue
        try:
            rows.append(normalise_message(item, received))
        except InvalidMessage as exc:
            result.rejected.append(Rejection(index, _message_id(item), exc.reason))
            continue
        if len(rows) >= ROWS_PER_FILE:
            result.files.append(_write_file(landing_dir, rows))
            result.accepted += len(rows)
            rows = []
    if rows:
        result.files.append(_write_file(landing_dir, rows))
        result.accepted += len(rows)
    return result


def land_messages(
    landing_dir: Path,
    messages: Iterable[Mapping[str, Any]],
    *,
    received_at: datetime | None = None,
) -> LandResult:
    """Land every valid message (a bad one rejects only itself) into ``landing_dir``.

    ``landing_dir`` is the folder the parquet files go into (``Workspace.events_landing_dir``).
    ``received_at`` (default: now) is the landing time recorded on every row; it is also the
    event time of messages that carry no timestamp.
    """
    return _land(landing_dir, enumerate(messages), received_at)


def _ndjson_items(path: Path) -> Iterator[tuple[int, Any]]:
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, Rejection(number, None, f"line {number} is not JSON: {exc.msg}")


def ingest_ndjson(landing_dir: Path, path: Path) -> LandResult:
    """Land an NDJSON file (one message per line), streaming. Rejections carry line numbers."""
    return _land(landing_dir, _ndjson_items(path), None)
