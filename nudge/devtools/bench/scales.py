"""The benchmark's data sizes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    name: str
    users: int
    events: int
    days: int = 90

    @property
    def incremental_events(self) -> int:
        """The second run adds 1% new events."""
        return max(self.events // 100, 1)


SCALES = {
    # A check that every stage runs (tests/test_bench_postgres.py), not a measurement.
    "tiny": Scale("tiny", users=1_000, events=10_000),
    "small": Scale("small", users=10_000, events=100_000),
    "medium": Scale("medium", users=100_000, events=1_000_000),
    "large": Scale("large", users=1_000_000, events=10_000_000),
}
