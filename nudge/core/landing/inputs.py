"""The files ``nudge ingest`` reads, as ``(position, message or Rejection)`` pairs.

- NDJSON (``.ndjson``, ``.jsonl``, and any file not starting with ``[`` or ``{``): one message per
  line, streamed; positions are line numbers.
- JSON (``.json``, or a file starting with ``[`` or ``{``): an array of messages, a Segment batch
  ``{"batch": [...]}`` or one message; positions are item numbers from 1.
- CSV (``.csv``) of identifies: a header naming a ``user_id`` column (or ``userId``); the optional
  ``anonymous_id``, ``timestamp`` and ``message_id`` columns fill those fields, every other
  non-empty cell is a trait (as text). Positions are line numbers, the header being line 1.

A UTF-8 byte order mark is accepted; a line (or CSV row) that is not UTF-8 rejects itself alone.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ijson

from nudge.core.landing.messages import InvalidMessage, nested_too_deep
from nudge.core.landing.writer import MAX_LINE_BYTES, Rejection, ndjson_items

_CSV_FIELDS = {
    "user_id": "userId",
    "userid": "userId",
    "anonymous_id": "anonymousId",
    "anonymousid": "anonymousId",
    "timestamp": "timestamp",
    "message_id": "messageId",
    "messageid": "messageId",
}


@dataclass(frozen=True)
class InputFile:
    """A file to ingest and what its positions are called (``line`` or ``item``)."""

    path: Path
    kind: str

    @property
    def position(self) -> str:
        return "item" if self.kind == "json" else "line"


def input_file(path: Path) -> InputFile:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return InputFile(path, "csv")
    if suffix in (".ndjson", ".jsonl"):
        return InputFile(path, "ndjson")
    if suffix == ".json":
        return InputFile(path, "json")
    with open(path, "rb") as source:
        start = source.read(64).removeprefix(codecs.BOM_UTF8).lstrip()
    return InputFile(path, "json" if start[:1] == b"[" else "ndjson")


def items(given: InputFile) -> Iterator[tuple[int, Any]]:
    if given.kind == "csv":
        return _csv_items(given.path)
    if given.kind == "json":
        return _json_items(given.path)
    return ndjson_items(given.path)


def _json_items(path: Path) -> Iterator[tuple[int, Any]]:
    """The messages of a JSON file, streamed: an array's items (or a batch's) are parsed one
    at a time, so a file larger than memory is read in constant memory. A file that turns out
    not to be JSON lands nothing (the error is raised from the iteration, inside the landing
    unit)."""
    position = 0
    with open(path, "rb") as source:
        if source.peek(len(codecs.BOM_UTF8)).startswith(codecs.BOM_UTF8):
            source.read(len(codecs.BOM_UTF8))
        first = source.peek(64).lstrip()[:1]
        prefix = "item" if first == b"[" else "batch.item" if _is_batch(path, first) else ""
        try:
            for position, message in enumerate(ijson.items(source, prefix, use_float=True), 1):
                yield position, message
        except UnicodeDecodeError as exc:
            raise _not_utf8(path) from exc
        except ijson.JSONError as exc:
            reason = str(exc).splitlines()[0].strip()
            if "UTF8" in reason or "UTF-8" in reason:
                raise _not_utf8(path) from exc
            where = f"after item {position}" if prefix else "in the message"
            raise InvalidMessage(f"{path} is not JSON: {reason} ({where})") from exc
        except RecursionError as exc:
            raise nested_too_deep() from exc


def _not_utf8(path: Path) -> InvalidMessage:
    return InvalidMessage(
        f"{path} is not UTF-8; as NDJSON (one message per line) a bad line would reject only "
        "itself."
    )


def _is_batch(path: Path, first: bytes) -> bool:
    """Whether a file starting with ``first`` is an object whose ``batch`` is an array (a
    Segment batch), found by a streaming pass that stops at the answer."""
    if first != b"{":
        return False
    with open(path, "rb") as source:
        if source.read(len(codecs.BOM_UTF8)) != codecs.BOM_UTF8:
            source.seek(0)
        try:
            for prefix, event, _ in ijson.parse(source):
                if prefix == "batch":
                    return event == "start_array"
        except (ijson.JSONError, UnicodeDecodeError):
            return False  # reading it as one message says what is wrong
    return False


def _csv_items(path: Path) -> Iterator[tuple[int, Any]]:
    if path.stat().st_size > 0 and _longest_line(path) > MAX_LINE_BYTES:
        raise InvalidMessage(f"{path} has a line longer than {MAX_LINE_BYTES} bytes")
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as source:
        reader = csv.reader(source)
        header = next(reader, None)
        if header is None:
            return
        names = [_CSV_FIELDS.get(name.strip().lower(), name.strip()) for name in header]
        if "userId" not in names:
            raise InvalidMessage(
                f"{path}: the header line names no user_id column (it has {', '.join(header)})"
            )
        for row in reader:
            number = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            try:
                yield number, _identify(names, row)
            except InvalidMessage as exc:
                yield number, Rejection(number, None, exc.reason, ",".join(row))


def _longest_line(path: Path) -> int:
    with open(path, "rb") as source:
        return max((len(line) for line in source), default=0)


def _identify(names: list[str], row: list[str]) -> dict[str, Any]:
    if len(row) != len(names):
        raise InvalidMessage(f"{len(row)} cells where the header has {len(names)}")
    message: dict[str, Any] = {"type": "identify", "traits": {}}
    for name, cell in zip(names, row, strict=True):
        try:
            cell.encode()
        except UnicodeEncodeError as exc:
            raise InvalidMessage(f"not UTF-8 (in column {name})") from exc
        if not cell:
            continue
        if name in _CSV_FIELDS.values():
            message[name] = cell
        else:
            message["traits"][name] = cell
    return message
