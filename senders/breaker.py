"""A circuit breaker per provider: stop handing messages to a provider that is dead or hung.

Without it a refused connection costs the immediate-retry pauses for every message, and a server
that accepts connections but never answers costs the full timeout, several times, per message. The
breaker opens after ``threshold`` failed connections in a row, or at once on a timeout (a hung
server answers no better to the next message). Once open it stays open for the rest of the
dispatch: the channel's remaining messages stay pending for the next run. Any other outcome
(sent, refused by the server, ...) proves the provider is alive and resets the count.
"""

from __future__ import annotations

from dataclasses import dataclass

from senders.providers import SendOutcome


@dataclass
class CircuitBreaker:
    """``label`` names the provider in the reason, e.g. ``smtp 127.0.0.1:25``."""

    label: str
    threshold: int = 3
    failures_in_a_row: int = 0
    reason: str | None = None  # why it opened; None while closed

    @property
    def is_open(self) -> bool:
        return self.reason is not None

    def record(self, outcome: SendOutcome) -> None:
        if outcome.fault == "timeout":
            self.reason = f"{self.label}: timed out ({outcome.reason})"
        elif outcome.fault == "unreachable":
            self.failures_in_a_row += 1
            if self.failures_in_a_row >= self.threshold:
                self.reason = (
                    f"{self.label}: {self.failures_in_a_row} connections failed in a row "
                    f"({outcome.reason})"
                )
        else:
            self.failures_in_a_row = 0
