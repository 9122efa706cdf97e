"""Rejected input, kept with its reason until an operator replays or removes it.

Every message the collector or ``nudge ingest`` rejects is written here rather than dropped:
one NDJSON file per rejecting request or input file, ``<stamp>-<uuid>.ndjson`` in the
workspace's ``quarantine/`` folder, one record per rejected message::

    {"source": "POST /v1/batch" or "events.ndjson", "api": "segment" or "customerio",
     "index": 3, "reason": "...", "received_at": "2026-12-04T22:14:50.123456",
     "message": <the message, or the text given>}

``api`` is the API the message came from, whose size limit a replay applies (a record
without it: the Track API's when its source is a ``/api/`` path, else Segment's).

The folder is capped (``NUDGE_QUARANTINE_MAX_BYTES``, default 256 MiB) so that a flood of bad
input cannot fill the disk: rejected input that would take it past the cap is not kept, only
counted (in ``.not-kept``); the answer to the sender still lists every rejected message.

``message`` is the Segment-spec message that was refused (for Customer.io calls, the message
the call was turned into when it got that far, else the body as sent). An entry is named
``<file stem>:<line>``. ``replay`` validates the entries again and lands those that now pass
(after a fix to nudge, or to the entry itself: the files are plain text to edit), removing
them; the others stay, with their new reason.
"""

from __future__ import annotations

import fcntl
import os
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from nudge.core.clock import utc_now
from nudge.core.landing.durable import replace_durably
from nudge.core.landing.messages import (
    MESSAGE_LIMITS,
    InvalidMessage,
    api_of_source,
    normalise_message,
)
from nudge.core.landing.suppressions import SuppressionList
from nudge.core.landing.writer import land_messages

# A text body kept in quarantine is cut to this many characters: enough to see what was sent.
MAX_KEPT_TEXT = 64 * 1024
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
NOT_KEPT = ".not-kept"


def max_bytes_from_env() -> int:
    """The quarantine's cap in bytes: ``NUDGE_QUARANTINE_MAX_BYTES`` (default 256 MiB)."""
    text = os.environ.get("NUDGE_QUARANTINE_MAX_BYTES", str(DEFAULT_MAX_BYTES)).strip()
    if not text.isdigit():
        raise ValueError(
            f"NUDGE_QUARANTINE_MAX_BYTES must be a number of bytes (0 keeps nothing), not {text!r}."
        )
    return int(text)


@dataclass(frozen=True)
class Entry:
    """One quarantined message: ``name`` is ``<file stem>:<line>``."""

    name: str
    source: str
    index: int | None
    reason: str
    received_at: str
    message: Any


def quarantine_record(
    source: str, index: int | None, reason: str, message: Any, api: str | None = None
) -> dict[str, Any]:
    """A record for ``keep``; ``api`` (default: the one ``source`` belongs to) is the API the
    message came from."""
    if isinstance(message, bytes):
        message = message.decode(errors="replace")
    if isinstance(message, str) and len(message) > MAX_KEPT_TEXT:
        message = message[:MAX_KEPT_TEXT]
    return {
        "source": source,
        "api": api or api_of_source(source),
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


def keep(
    quarantine_dir: Path, records: list[dict[str, Any]], max_bytes: int | None = None
) -> Path | None:
    """Write ``records`` (from ``quarantine_record``) as one new quarantine file, unless that
    would take the folder past ``max_bytes`` (default ``max_bytes_from_env()``): then they are
    only counted (``not_kept``) and None is returned."""
    if not records:
        return None
    quarantine_dir.mkdir(parents=True, exist_ok=True)
    lines = [_line(record) for record in records]
    cap = max_bytes_from_env() if max_bytes is None else max_bytes
    if _size(quarantine_dir) + sum(map(len, lines)) > cap:
        _update_not_kept(quarantine_dir, lambda total: total + len(records))
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    path = quarantine_dir / f"{stamp}-{uuid.uuid4().hex[:12]}.ndjson"
    replace_durably(path, lines)
    return path


def _size(quarantine_dir: Path) -> int:
    with os.scandir(quarantine_dir) as found:
        return sum(e.stat().st_size for e in found if e.name.endswith(".ndjson"))


def _update_not_kept(quarantine_dir: Path, update: Callable[[int], int]) -> None:
    """Replace the folder's count of rejected messages not kept with ``update(count)``; a lock
    keeps concurrent writers (the collector's threads, ``nudge ingest``, ``nudge quarantine
    drop``) from clashing."""
    fd = os.open(quarantine_dir / NOT_KEPT, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        text = os.read(fd, 32).strip()
        total = update(int(text) if text.isdigit() else 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, f"{total}\n".encode())
    finally:
        os.close(fd)  # also releases the lock


def not_kept(quarantine_dir: Path) -> int:
    """How many rejected messages were not kept because the folder was at its cap (since
    ``drop`` of every entry reset the count, or ``.not-kept`` was removed)."""
    try:
        text = (quarantine_dir / NOT_KEPT).read_text().strip()
    except FileNotFoundError:
        return 0
    return int(text) if text.isdigit() else 0


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
        landing: dict[int, list[Any]] = defaultdict(list)  # by size limit
        for number, record in _records(path):
            if names is not None and f"{path.stem}:{number}" not in names:
                kept.append(_line(record))
                continue
            limit = _limit(record)
            try:
                row = normalise_message(record["message"], now, max_bytes=limit)
            except InvalidMessage as exc:
                kept.append(_line({**record, "reason": exc.reason}))
                result.still_rejected += 1
                continue
            if suppressions.suppressed_id(row) is not None:
                result.suppressed += 1
            else:
                landing[limit].append(record["message"])
        for limit, messages in landing.items():
            landed = land_messages(landing_dir, messages, received_at=now, max_bytes=limit)
            result.landed += landed.accepted
        _rewrite(path, kept)
    return result


def drop(quarantine_dir: Path, names: set[str] | None = None) -> int:
    """Remove the quarantined messages named ``<file stem>:<line>``, or every one (and the count
    of those not kept) when ``names`` is None; returns how many were removed. Files written
    meanwhile (by the collector, ``nudge ingest``) are left alone."""
    removed = 0
    for path in _files(quarantine_dir):
        kept: list[bytes] = []
        for number, record in _records(path):
            if names is None or f"{path.stem}:{number}" in names:
                removed += 1
            else:
                kept.append(_line(record))
        _rewrite(path, kept)
    if names is None and quarantine_dir.is_dir():
        _update_not_kept(quarantine_dir, lambda _: 0)
    return removed


def _rewrite(path: Path, kept: list[bytes]) -> None:
    """Leave ``path`` holding the ``kept`` lines only, or remove it when there are none."""
    if kept:
        replace_durably(path, kept)
    else:
        path.unlink()


def _limit(record: dict[str, Any]) -> int:
    """The size limit of the API a quarantined message came from."""
    api = record.get("api")
    if api not in MESSAGE_LIMITS:
        api = api_of_source(str(record.get("source", "")))
    return MESSAGE_LIMITS[api]
