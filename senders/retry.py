"""When to try a transiently failed message again: exponential backoff with full jitter.

The jitter is drawn from a hash of the idempotency key and the attempt number, not from a random
generator, so a run replayed at the same ``as_of`` schedules exactly the same retries. A provider's
``Retry-After`` (seconds or an HTTP date) wins over the computed delay when it is longer.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from nudge.core.clock import to_utc_naive

MAX_ATTEMPTS = 5
BASE_DELAY = timedelta(minutes=5)
MAX_DELAY = timedelta(hours=6)


def jitter_fraction(key: str, attempt: int) -> float:
    """A number in [0, 1) that depends only on ``key`` and ``attempt``."""
    digest = hashlib.sha256(f"{key}\x1f{attempt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def backoff_delay(
    key: str,
    attempt: int,
    *,
    base: timedelta = BASE_DELAY,
    cap: timedelta = MAX_DELAY,
    retry_after: float | None = None,
) -> timedelta:
    """Full jitter: uniform in ``[0, min(cap, base * 2**(attempt-1)))``, at least ``retry_after``
    seconds when the provider asked for that."""
    ceiling = min(cap, base * 2 ** max(attempt - 1, 0))
    delay = ceiling * jitter_fraction(key, attempt)
    if retry_after is not None:
        delay = max(delay, timedelta(seconds=retry_after))
    return delay


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date (``now`` is
    naive UTC). None when absent or unreadable; never negative."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max((to_utc_naive(moment) - now).total_seconds(), 0.0)
