"""Delivery windows (``window`` steps): is an instant inside, and when does the next one open.

Computed in Python with ``zoneinfo`` once per distinct time zone (never per user), so local
clock times are right across daylight-saving changes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from journeys.sqltext import clock_seconds
from nudge.core.dsl.spec import Window

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def window_state(window: Window, zone: str, as_of: datetime, where: str) -> tuple[bool, datetime]:
    """(inside, next opening) for naive-UTC ``as_of`` in ``zone``; the opening is naive UTC.

    A window whose ``to`` is not after ``from`` runs overnight into the next day; equal times
    mean the whole day.
    """
    tz = ZoneInfo(zone)
    start = _clock(window.start, where)
    end = _clock(window.end, where)
    unknown = [d for d in window.days if d not in DAY_NAMES]
    if unknown or not window.days:
        raise ValueError(f"{where}: window days must be among {', '.join(DAY_NAMES)}")
    days = {DAY_NAMES.index(d) for d in window.days}
    now = as_of.replace(tzinfo=UTC)
    today = now.astimezone(tz).date()
    inside, openings = False, []
    for offset in range(-1, 9):
        day = today + timedelta(days=offset)
        if day.weekday() not in days:
            continue
        opens = _instant(day, start, tz)
        closes = _instant(day + timedelta(days=1 if end <= start else 0), end, tz)
        inside = inside or opens <= now < closes
        if opens > now:
            openings.append(opens)
    return inside, min(openings).astimezone(UTC).replace(tzinfo=None)


def _clock(text: str, where: str) -> time:
    seconds = clock_seconds(text, where)
    return time(seconds // 3600, seconds % 3600 // 60)


def _instant(day: date, clock: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, clock, tzinfo=tz).astimezone(UTC)
