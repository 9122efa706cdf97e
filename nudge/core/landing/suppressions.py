"""The identifiers whose messages are dropped at ingest (suppressed people, GDPR).

A suppressed person is deleted from the warehouse and must not come back through later
messages: the collector and ``nudge ingest`` drop any message whose user id, anonymous id or
previous id is on this list, and count the drops. An identifier holding ``@`` is an email
address (a Customer.io suppression addressed by email): it also drops the messages that carry
it in any case, and the identify messages whose ``email`` trait it is. The list is one JSON file in the workspace
home, replaced atomically under an exclusive lock, so a collector and the CLI can change it at
the same time; readers keep a copy and reread the file only when it has changed.
"""

from __future__ import annotations

import fcntl
import functools
import math
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from nudge.core.landing.durable import replace_durably

_ID_COLUMNS = ("user_id", "anonymous_id", "previous_id")


class SuppressionList:
    """The suppressed identifiers stored in ``path`` (a JSON array of strings)."""

    def __init__(self, path: Path, *, recheck_seconds: float = 0.0) -> None:
        self.path = path
        self.recheck_seconds = recheck_seconds
        self._seen: tuple[int, int, int] | None = None
        self._ids: frozenset[str] = frozenset()
        self._checked = -math.inf

    def current(self) -> frozenset[str]:
        """The identifiers suppressed now. The file is reread only after it changed, and looked
        at no more often than every ``recheck_seconds`` (changes made through this object are
        seen at once)."""
        now = time.monotonic()
        if now - self._checked < self.recheck_seconds:
            return self._ids
        self._checked = now
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            self._seen, self._ids = None, frozenset()
            return self._ids
        seen = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if seen != self._seen:
            self._ids = frozenset(_read(self.path))
            self._seen = seen
        return self._ids

    def suppressed_id(self, row: Mapping[str, Any]) -> str | None:
        """The identifier of a landing row that is suppressed now, if any."""
        return suppressed_id(row, self.current())

    def add(self, identifiers: Iterable[str]) -> None:
        with self._changing() as ids:
            ids.update(identifiers)

    def remove(self, identifiers: Iterable[str]) -> None:
        """Take ``identifiers`` off the list (email addresses in any case)."""
        gone = {suppression_key(i) for i in identifiers}
        with self._changing() as ids:
            ids.difference_update({i for i in ids if suppression_key(i) in gone})

    @contextmanager
    def _changing(self) -> Iterator[set[str]]:
        """The stored set, to change in place; written back atomically under the lock."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            ids = set(_read(self.path)) if self.path.exists() else set()
            yield ids
            replace_durably(self.path, [orjson.dumps(sorted(ids))])
            self._checked = -math.inf
        finally:
            os.close(lock)


def suppressed_id(row: Mapping[str, Any], ids: frozenset[str]) -> str | None:
    """The identifier of a landing row that is one of ``ids``, if any: one of its ids, or an
    email address of ``ids`` (case ignored) that is one of its ids or, in an identify, its
    ``email`` trait."""
    if not ids:
        return None
    found = next((row[c] for c in _ID_COLUMNS if row.get(c) in ids), None)
    if found is not None or not (emails := _emails(ids)):
        return found
    found = next((row[c] for c in _ID_COLUMNS if (row.get(c) or "").lower() in emails), None)
    traits = row.get("traits") if row.get("type") == "identify" else None  # a group's are its own
    if found is None and traits and '"email"' in traits:
        email = orjson.loads(traits).get("email")
        if isinstance(email, str) and email.lower() in emails:
            found = email
    return found


def is_suppressed(identifier: str, ids: frozenset[str]) -> bool:
    """Whether ``identifier`` is one of ``ids`` (an email address in any case)."""
    return identifier in ids or ("@" in identifier and suppression_key(identifier) in _emails(ids))


def suppression_key(identifier: str) -> str:
    """What an identifier is compared by: email addresses (holding ``@``) in lower case."""
    return identifier.lower() if "@" in identifier else identifier


@functools.lru_cache(maxsize=4)
def _emails(ids: frozenset[str]) -> frozenset[str]:
    """The email addresses among ``ids``, lower case (worked out once per list)."""
    return frozenset(suppression_key(i) for i in ids if "@" in i)


def _read(path: Path) -> list[str]:
    try:
        value = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ValueError(
            f"{path} is not a JSON array of identifiers ({exc}); fix or remove it."
        ) from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{path} is not a JSON array of identifiers; fix or remove it.")
    return value
