"""A token bucket shared by the threads that send through one provider.

``rate`` tokens per second refill a bucket of ``burst`` tokens; ``acquire`` takes one, sleeping
until one is there. Providers publish limits per account or per hook (Slack: about one message
per second per hook, Twilio: per sender number), so the limit belongs to the provider, not to a
thread.
"""

from __future__ import annotations

import threading
import time


class TokenBucket:
    def __init__(self, rate: float, burst: int | None = None):
        if rate <= 0:
            raise ValueError(f"a rate limit must be more than 0 per second, got {rate}")
        self.rate = rate
        self.burst = max(1, burst if burst is not None else round(rate))
        self._tokens = float(self.burst)
        self._updated = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Take one token, waiting for it if the bucket is empty."""
        while True:
            with self._lock:
                now = time.monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                wait = (1 - self._tokens) / self.rate
            time.sleep(wait)
