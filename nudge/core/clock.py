"""Time in one place: naive UTC, a user's time zone, and local clock windows.

Every instant nudge stores or compares is a naive ``datetime`` in UTC (the warehouse's
``TIMESTAMP``); a naive value handed in is taken to be UTC already. A user's local time is
only worked out where a rule is written in local clock times (quiet hours, ``window`` steps,
``at`` times of date triggers), from the zone named in a trait, with a fallback zone when the
trait is missing or names no zone. The zone rule exists twice on purpose, as Python
(``user_zone``) and as SQL (``zone_or_default_sql``), because zones are resolved both per
distinct zone in Python and per user in the warehouse; both fall back in the same cases.

A clock window ``[start, end)`` is judged on instants, not on wall-clock minutes: each day's
opening and closing are local times turned into UTC with ``zoneinfo``, so daylight-saving
changes move them the way a person's clock does. ``end`` not after ``start`` runs overnight into
the next day; equal times mean the whole day.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
# Openings are searched from yesterday (an overnight window opened then may still be open) to a
# week ahead plus a day, so that a window on a single weekday always has a next opening.
_SEARCH_DAYS = range(-1, 9)


def to_utc_naive(moment: datetime) -> datetime:
    """``moment`` as naive UTC: an aware value is converted, a naive one is UTC already."""
    zone = moment.tzinfo
    if zone is None:
        return moment
    if zone is UTC:  # what ISO 8601 text ending in Z reads as: nothing to convert
        return moment.replace(tzinfo=None)
    return moment.astimezone(UTC).replace(tzinfo=None)


def parse_iso_instant(text: str) -> datetime:
    """The instant the ISO 8601 ``text`` names, as naive UTC: a trailing ``Z`` and an offset are
    honoured, text without either is UTC already. ``ValueError`` when it is not ISO 8601; callers
    say what was expected in their own words."""
    return to_utc_naive(datetime.fromisoformat(text.replace("Z", "+00:00")))


def to_utc_aware(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime (a naive value is taken to be UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def utc_now() -> datetime:
    """The wall clock now, as naive UTC to the microsecond."""
    return datetime.now(UTC).replace(tzinfo=None)


def user_zone(name: object, default: str) -> ZoneInfo:
    """The IANA zone ``name`` (a trait's value), else ``default`` when it is empty or unknown."""
    if name:
        try:
            return ZoneInfo(str(name))
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo(default)


def zone_or_default_sql(name: str, default: str) -> str:
    """SQL for the IANA zone named by the text expression ``name``; ``default`` when it is NULL
    or names no zone the warehouse knows (``user_zone``'s rule, per row in DuckDB)."""
    default_literal = "'" + default.replace("'", "''") + "'"
    return f"""coalesce(
        (select name from pg_timezone_names() where name = {name}), {default_literal})"""


def clock_seconds(clock: str, where: str) -> int:
    """Seconds after midnight of an ``HH:MM`` clock time; ``where`` names it in the error."""
    match = _CLOCK.match(clock)
    if match is None:
        raise ValueError(f"{where}: {clock!r} is not a clock time; expected HH:MM, e.g. 09:00")
    return int(match[1]) * 3600 + int(match[2]) * 60


def clock_time(clock: str, where: str) -> time:
    """The ``HH:MM`` clock time ``clock`` as a ``time``; ``where`` names it in the error."""
    seconds = clock_seconds(clock, where)
    return time(seconds // 3600, seconds % 3600 // 60)


def weekdays(names: Collection[str], where: str) -> frozenset[int]:
    """Day names (``mon`` .. ``sun``) as ``date.weekday()`` numbers; at least one is needed."""
    unknown = [d for d in names if d not in DAY_NAMES]
    if unknown or not names:
        raise ValueError(f"{where}: window days must be among {', '.join(DAY_NAMES)}")
    return frozenset(DAY_NAMES.index(d) for d in names)


def clock_window_state(
    start: time,
    end: time,
    zone: ZoneInfo,
    as_of: datetime,
    days: Collection[int] = range(7),
) -> tuple[bool, datetime]:
    """(inside, next opening) of the local window ``[start, end)`` on ``days`` (weekday numbers
    of the opening day) in ``zone``, for naive-UTC ``as_of``; the opening is naive UTC."""
    now = to_utc_aware(as_of)
    today = now.astimezone(zone).date()
    inside, openings = False, []
    for offset in _SEARCH_DAYS:
        day = today + timedelta(days=offset)
        if day.weekday() not in days:
            continue
        opens = _instant(day, start, zone)
        closes = _instant(day + timedelta(days=1 if end <= start else 0), end, zone)
        inside = inside or opens <= now < closes
        if opens > now:
            openings.append(opens)
    return inside, to_utc_naive(min(openings))


def _instant(day: date, clock: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)
