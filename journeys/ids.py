"""Deterministic identifiers: the same inputs give the same ids in every run, retry and replay.

Each id has a Python form (for callers and tests) and a SQL form (for set-based statements); both
are the sha256 hex digest of the parts joined by the unit separator (U+001F).
"""

from __future__ import annotations

import hashlib

SEP = "\x1f"


def _digest(*parts: str) -> str:
    return hashlib.sha256(SEP.join(parts).encode()).hexdigest()


def entry_id(journey: str, user_id: str, trigger_key: str) -> str:
    return _digest(journey, user_id, trigger_key)


def idempotency_key(journey: str, entry: str, step: str) -> str:
    return _digest(journey, entry, step)


def delivery_id(journey: str, entry: str, step: str) -> str:
    return _digest("delivery", journey, entry, step)


def sql_digest(*parts: str) -> str:
    """SQL for the sha256 of ``parts`` (SQL expressions) joined like ``_digest``."""
    return "sha256(" + " || chr(31) || ".join(parts) + ")"
