"""Rejected input, kept with its reason until an operator replays or removes it.

Every message the collector or ``nudge ingest`` rejects is written here rather than dropped:
one NDJSON file per rejecting request or input file, ``<stamp>-<uuid>.ndjson`` in the
workspace's ``quarantine/`` folder, one record per rejected message::

    {"source": "POST /v1/batch" or "events.ndjson", "index": 3, "reason": "...",
     "received_at": "2026-12-04T22:14:50.123456", "message": <the message, or the text given>}

``message`` is the Segment-spec message that was refused (for Customer.io calls, the message
the call was turned into when it got that far, else the body as sent). An entry is named
``<file stem>:<line>``. ``replay`` validates the entries again and lands those that now pass
(after a fix to nudge, or to the entry itself: the files are plain text to edit), removing
them; the others stay, with their new reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from nudge.core.clock import utc_now
from nudge.core.landing.durable import replace_durably
from nudge.core.landing.messages import InvalidMessage, normalise_message
from nudge.core.landing.suppressions import SuppressionList
from nudge.core.landing.writer import land_messages

# A text body kept in quarantine is cut to this many characters: enough to see what was sent.
MAX_KEPT_TEXT = 64 * 1024


@dataclass(frozen=True)
class Entry:
    """One quarantined message: ``name`` is ``<file stem>:<line>``."""

    name: str
    source: str
    index: int | None
    reason: str
    received_at: str
    message: Any


def quarantine_record(source: str, index: int | None, reason: str, message: Any) -> dict[str, Any]:
    if isinstance(message, bytes):
        message = message.decode(errors="replace")
    if isinstance(message, str) and len(message) > MAX_KEPT_TEXT:
        message = message[:MAX_KEPT_TEXT]
    return {
        "source": source,
        "index": index,
        "reason": reason,
        "received_at": utc_now().isoformat(),
        "message": message,
    }


def _line(record: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(record, default=str) + b"\n"
    except orjson.JSONEncodeError:  # e.g. nesting deeper than JSON writers allow
        return orjson.dumps({**record, "message": repr(record["message"])[:MAX_KEPT_TEXT]}) + b"\n"


def keep(quarantine_dir: Path, records: list[dict[str, Any]]) -> Path | None:
    """Write ``records`` (from ``quarantine_record``) as one new quarantine file."""
    if not records:
        return None
    quarantine_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    path = quarantine_dir / f"{stamp}-{uuid.uuid4().hex[:12]}.ndjson"
    replace_durably(path, map(_line, records))
    return path


def _files(quarantine_dir: Path) -> list[Path]:
    if not quarantine_dir.is_dir():
        return []
    return sorted(p for p in quarantine_dir.glob("*.ndjson") if not p.name.startswith("."))


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(path.read_bytes().splitlines(), start=1):
        if line.strip():
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise ValueError(
                    f"{path}, line {number}: not a quarantine record ({exc}); fix or remove it."
                ) from exc
            if not isinstance(record, dict) or "message" not in record:
                raise ValueError(
                    f"{path}, line {number}: not a quarantine record (an object with a message)."
                )
            yield number, record


def entries(quarantine_dir: Path) -> Iterator[Entry]:
    """Every quarantined message, oldest first."""
    for path in _files(quarantine_dir):
        for number, record in _records(path):
            yield Entry(
                name=f"{path.stem}:{number}",
                source=str(record.get("source", "")),
                index=record.get("index"),
                reason=str(record.get("reason", "")),
                received_at=str(record.get("received_at", "")),
                message=record["message"],
            )


@dataclass
class ReplayResult:
    landed: int = 0
    suppressed: int = 0
    still_rejected: int = 0


def replay(
    quarantine_dir: Path,
    landing_dir: Path,
    suppressions: SuppressionList,
    names: set[str] | None = None,
) -> ReplayResult:
    """Validate the quarantined messages again (all, or those named ``<file stem>:<line>``);
    land those that pass, drop those now suppressed, keep the rest with their new reason."""
    result = ReplayResult()
    now = datetime.now(UTC)
    for path in _files(quarantine_dir):
        kept: list[bytes] = []
        landing: list[Any] = []
        for number, record in _records(path):
            if names is not None and f"{path.stem}:{number}" not in names:
                kept.append(_line(record))
                continue
            try:
                row = normalise_message(record["message"], now)
            except InvalidMessage as exc:
                kept.append(_line({**record, "reason": exc.reason}))
                result.still_rejected += 1
                continue
            if suppressions.suppressed_id(row) is not None:
                result.suppressed += 1
            else:
                landing.append(record["message"])
        if landing:
            result.landed += land_messages(landing_dir, landing, received_at=now).accepted
        if kept:
            replace_durably(path, kept)
        else:
            path.unlink()
    return result
