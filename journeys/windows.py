"""Delivery windows (``window`` steps): is an instant inside, and when does the next one open.

Computed in Python once per distinct time zone (never per user) by the core clock's window rule
(``nudge.core.clock.clock_window_state``), so local clock times are right across daylight-saving
changes.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from nudge.core.clock import clock_time, clock_window_state, weekdays
from nudge.core.dsl.spec import Window


def window_state(window: Window, zone: str, as_of: datetime, where: str) -> tuple[bool, datetime]:
    """(inside, next opening) for naive-UTC ``as_of`` in ``zone``; the opening is naive UTC.

    A window whose ``to`` is not after ``from`` runs overnight into the next day; equal times
    mean the whole day.
    """
    start, end = clock_time(window.start, where), clock_time(window.end, where)
    days = weekdays(window.days, where)
    return clock_window_state(start, end, ZoneInfo(zone), as_of, days)
