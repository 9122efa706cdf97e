"""The one clock module: naive UTC, a user's zone with its fallback, local clock windows."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import duckdb
import pytest

from nudge.core.clock import (
    clock_window_state,
    to_utc_aware,
    to_utc_naive,
    user_zone,
    zone_or_default_sql,
)
from nudge.core.dsl.spec import QuietHours
from senders.policy import in_quiet_hours

PARIS = ZoneInfo("Europe/Paris")


def test_naive_is_utc_and_aware_is_converted() -> None:
    naive = datetime(2026, 3, 1, 12, 0)
    assert to_utc_naive(naive) is naive
    assert to_utc_naive(datetime(2026, 3, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))) == naive
    assert to_utc_aware(naive).utcoffset() == timedelta(0)
    assert to_utc_naive(to_utc_aware(naive)) == naive


@pytest.mark.parametrize(
    ("name", "zone"),
    [
        ("Europe/Paris", "Europe/Paris"),
        ("America/New_York", "America/New_York"),
        (None, "Asia/Tokyo"),
        ("", "Asia/Tokyo"),
        ("Mars/Olympus", "Asia/Tokyo"),
        ("../etc/passwd", "Asia/Tokyo"),
    ],
)
def test_the_zone_falls_back_the_same_way_in_python_and_sql(name: str | None, zone: str) -> None:
    assert user_zone(name, "Asia/Tokyo").key == zone
    with duckdb.connect() as con:
        sql = zone_or_default_sql("$name", "Asia/Tokyo")
        assert con.execute(f"select {sql}", {"name": name}).fetchone() == (zone,)


def test_an_overnight_window_is_open_after_midnight_and_reopens_in_the_evening() -> None:
    # 23:30 UTC on 1 March is 00:30 in Paris (UTC+1): inside 21:00 -> 08:00.
    inside, opens = clock_window_state(time(21), time(8), PARIS, datetime(2026, 3, 1, 23, 30))
    assert inside
    assert opens == datetime(2026, 3, 2, 20, 0)  # 21:00 Paris
    inside, opens = clock_window_state(time(21), time(8), PARIS, datetime(2026, 3, 2, 7, 0))
    assert not inside
    assert opens == datetime(2026, 3, 2, 20, 0)


def test_window_openings_follow_daylight_saving_time() -> None:
    # Paris moves to UTC+2 on 29 March 2026: 09:00 local is 08:00 UTC before, 07:00 UTC after.
    _, before = clock_window_state(time(9), time(17), PARIS, datetime(2026, 3, 27, 12, 0))
    _, after = clock_window_state(time(9), time(17), PARIS, datetime(2026, 3, 29, 12, 0))
    assert before == datetime(2026, 3, 28, 8, 0)
    assert after == datetime(2026, 3, 30, 7, 0)


def test_a_window_on_given_days_opens_on_the_next_of_them() -> None:
    friday_evening = datetime(2026, 3, 6, 20, 0)  # a Friday, UTC
    inside, opens = clock_window_state(time(9), time(17), ZoneInfo("UTC"), friday_evening, days={0})
    assert not inside
    assert opens == datetime(2026, 3, 9, 9, 0)  # Monday


def test_quiet_hours_use_the_users_zone_and_equal_times_mean_none() -> None:
    quiet = QuietHours("21:00", "08:00", None, "UTC")
    evening_utc = datetime(2026, 3, 1, 21, 30)
    assert in_quiet_hours(quiet, evening_utc, None)
    assert in_quiet_hours(quiet, evening_utc, "Not/AZone")  # falls back to UTC
    assert not in_quiet_hours(quiet, evening_utc, "America/New_York")  # 16:30 there
    assert not in_quiet_hours(QuietHours("09:00", "09:00", None, "UTC"), evening_utc, None)
