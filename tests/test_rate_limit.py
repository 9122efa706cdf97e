"""The token bucket, on a clock the test moves (a real clock would make the test timing-bound)."""

from __future__ import annotations

import pytest

from senders import rate_limit
from senders.rate_limit import TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(rate_limit.time, "monotonic", fake.monotonic)
    monkeypatch.setattr(rate_limit.time, "sleep", fake.sleep)
    return fake


def test_a_burst_goes_at_once_then_one_token_per_interval(clock: FakeClock):
    bucket = TokenBucket(rate=2.0, burst=3)
    for _ in range(3):
        bucket.acquire()
    assert clock.slept == []
    for _ in range(4):
        bucket.acquire()
    assert sum(clock.slept) == pytest.approx(2.0)  # 4 more at 2 per second


def test_idle_time_refills_up_to_the_burst_only(clock: FakeClock):
    bucket = TokenBucket(rate=1.0, burst=2)
    bucket.acquire()
    bucket.acquire()
    clock.now += 60  # a long pause earns no more than the burst
    for _ in range(3):
        bucket.acquire()
    assert sum(clock.slept) == pytest.approx(1.0)


def test_a_rate_must_be_positive():
    with pytest.raises(ValueError, match="more than 0 per second"):
        TokenBucket(rate=0)
