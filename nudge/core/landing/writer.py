"""Write validated messages into the landing area as parquet files, atomically.

Writers (the HTTP collector, the CLI, the scenario runner) never open the warehouse: DuckDB
allows one writer process at a time, so they append files here and the loader copies them in.
Each landing call is written in parts of at most ``rows_per_file`` rows out of the loader's
sight and published at once (``nudge.core.landing.staging``), so the loader never sees half a file
nor part of a call. One message (or NDJSON line) that cannot be landed rejects only itself.
"""

from __future__ import annotations

import codecs
import itertools
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa

from nudge.core.clock import to_utc_naive, utc_now
from nudge.core.landing.messages import (
    LANDING_COLUMNS,
    MAX_MESSAGE_BYTES,
    InvalidMessage,
    integer_too_long,
    nested_too_deep,
    normalise_message,
)
from nudge.core.landing.staging import StagedParts, staged_parts
from nudge.core.landing.suppressions import SuppressionList, suppressed_id

ROWS_PER_FILE = 100_000
# An NDJSON line longer than this is rejected without being held in memory: 32 times the message
# limit leaves room for any escaping or spacing a sender reasonably uses.
MAX_LINE_BYTES = 32 * MAX_MESSAGE_BYTES

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
    # What was given (the message, or the text of a line that is not one), for quarantine.
    given: Any = field(default=None, compare=False, repr=False)


@dataclass
class LandResult:
    accepted: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    suppressed: int = 0


def landing_file_name(now: datetime | None = None) -> str:
    """``<UTC yyyymmddTHHMMSSffffff>-<uuid4 hex>.parquet``: sortable by landing time, unique."""
    stamp = to_utc_naive(now or utc_now()).strftime("%Y%m%dT%H%M%S%f")
    return f"{stamp}-{uuid.uuid4().hex}.parquet"


def _message_id(msg: Any) -> str | None:
    if isinstance(msg, Mapping):
        value = msg.get("messageId")
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                return str(value)
            except ValueError:  # more digits than Python prints
                return None
    return None


def _valid_rows(
    items: Iterable[tuple[int, Any]],
    received: datetime,
    result: LandResult,
    suppressions: SuppressionList | None,
    max_bytes: int,
) -> Iterator[dict[str, Any]]:
    """The landing rows of ``(index, message_or_rejection)`` pairs; the rest go to ``result``
    (rejected, or counted as suppressed). One message is held to ``max_bytes``."""
    suppressed_ids = suppressions.current() if suppressions is not None else frozenset()
    for index, item in items:
        if isinstance(item, Rejection):
            result.rejected.append(item)
            continue
        try:
            row = normalise_message(item, received, max_bytes=max_bytes)
        except InvalidMessage as exc:
            result.rejected.append(Rejection(index, _message_id(item), exc.reason, item))
            continue
        if suppressed_id(row, suppressed_ids) is not None:
            result.suppressed += 1
            continue
        yield row


def land_items(
    landing_dir: Path,
    items: Iterable[tuple[int, Any]],
    *,
    received_at: datetime | None = None,
    rows_per_file: int = ROWS_PER_FILE,
    suppressions: SuppressionList | None = None,
    max_bytes: int = MAX_MESSAGE_BYTES,
) -> LandResult:
    """Land the valid messages of ``(index, message or Rejection)`` pairs as one unit: written
    in parts of ``rows_per_file`` rows and published together at the end. Messages of people
    on ``suppressions`` are dropped and counted; one message is held to ``max_bytes`` (the
    limit of the API it came from)."""
    if rows_per_file < 1:
        raise ValueError(f"rows_per_file must be at least 1, got {rows_per_file}")
    landing_dir.mkdir(parents=True, exist_ok=True)
    result = LandResult()
    rows = _valid_rows(items, received_at or datetime.now(UTC), result, suppressions, max_bytes)
    with ExitStack() as stack:
        staged: StagedParts | None = None
        while part := list(itertools.islice(rows, rows_per_file)):
            staged = staged or stack.enter_context(staged_parts(landing_dir))
            staged.write(pa.Table.from_pylist(part, schema=LANDING_SCHEMA))
            result.accepted += len(part)
        if staged is not None:
            result.files = staged.publish(landing_file_name())
    return result


def land_messages(
    landing_dir: Path,
    messages: Iterable[Mapping[str, Any]],
    *,
    received_at: datetime | None = None,
    rows_per_file: int = ROWS_PER_FILE,
    max_bytes: int = MAX_MESSAGE_BYTES,
) -> LandResult:
    """Land every valid message (a bad one rejects only itself, as does one over ``max_bytes``)
    into ``landing_dir``.

    ``landing_dir`` is the folder the parquet files go into (``Workspace.events_landing_dir``).
    ``received_at`` (default: now) is the landing time recorded on every row; it is also the
    event time of messages that carry no timestamp. The loader sees all of the landed rows at
    once, or none if the call fails or is killed.
    """
    return land_items(
        landing_dir,
        enumerate(messages),
        received_at=received_at,
        rows_per_file=rows_per_file,
        max_bytes=max_bytes,
    )


def _lines(source: BinaryIO) -> Iterator[bytes | None]:
    """Each line of ``source`` without reading more than ``MAX_LINE_BYTES`` of it at a time;
    ``None`` stands for a line over that limit (read past, not kept)."""
    while line := source.readline(MAX_LINE_BYTES + 1):
        if len(line) <= MAX_LINE_BYTES or line.endswith(b"\n"):
            yield line
            continue
        while (rest := source.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
            pass
        yield None


def _parsed_line(line: bytes | None) -> Any:
    """The JSON value of one NDJSON line; ``InvalidMessage`` says why a line is not one."""
    if line is None:
        raise InvalidMessage(f"line is longer than {MAX_LINE_BYTES} bytes")
    try:
        text = line.decode()
    except UnicodeDecodeError as exc:
        raise InvalidMessage(
            f"not UTF-8 (byte 0x{line[exc.start]:02x} at byte {exc.start + 1} of the line)"
        ) from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidMessage(f"not JSON: {exc.msg} (column {exc.colno})") from exc
    except RecursionError as exc:
        raise nested_too_deep() from exc
    except ValueError as exc:  # the only other: an integer with more digits than Python reads
        raise integer_too_long() from exc


def _kept_text(line: bytes | None) -> str | None:
    """A rejected line as text to keep (bytes that are not UTF-8 replaced), if not too long."""
    return None if line is None else line.decode(errors="replace").rstrip("\r\n")


def ndjson_items(path: Path) -> Iterator[tuple[int, Any]]:
    """Each line of an NDJSON file as ``(line number, message or Rejection)``."""
    with open(path, "rb") as source:
        for number, line in enumerate(_lines(source), start=1):
            if number == 1 and line is not None:
                line = line.removeprefix(codecs.BOM_UTF8)
            if line is not None and not line.strip():
                continue
            try:
                yield number, _parsed_line(line)
            except InvalidMessage as exc:
                yield number, Rejection(number, None, exc.reason, _kept_text(line))


def ingest_ndjson(
    landing_dir: Path, path: Path, *, rows_per_file: int = ROWS_PER_FILE
) -> LandResult:
    """Land an NDJSON file (one message per line, UTF-8, a byte order mark allowed), streaming,
    as one unit (see ``land_messages``). Rejections carry line numbers."""
    return land_items(landing_dir, ndjson_items(path), rows_per_file=rows_per_file)
