"""SQL text helpers: literals, JSON paths, and local clock times in a user's zone.

Every time is a naive UTC ``TIMESTAMP``, the warehouse convention. DuckDB's ICU time zone data
does the local-time arithmetic, so daylight-saving changes are handled. Timestamp traits come
parsed from ``marts.dim_user_traits`` (the segment compiler's rule).
"""

from __future__ import annotations

from nudge.core.clock import clock_seconds, zone_or_default_sql


def sql_string(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def json_path(name: str) -> str:
    """A DuckDB JSON path selecting the top-level key ``name``, whatever characters it has."""
    return '$."' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def user_zone_sql(traits: str, attribute: str | None, default: str) -> str:
    """SQL for the user's IANA zone from trait ``attribute``; ``default`` when missing or unknown."""
    if attribute is None:
        return sql_string(default)
    return zone_or_default_sql(f"({traits} ->> {sql_string(json_path(attribute))})", default)


def at_local_clock_sql(
    instant: str, clock: str, zone: str, where: str, calendar_day: str = "false"
) -> str:
    """SQL: the local date of ``instant`` (naive UTC) in ``zone``, at ``clock``, as naive UTC.

    Where the SQL condition ``calendar_day`` holds, ``instant`` is a calendar day (a date with
    no time of day, read as its midnight) and is that day wherever the user is: west of UTC,
    midnight UTC of a date falls on the local day before."""
    seconds = clock_seconds(clock, where)
    local_day = (
        f"case when {calendar_day} then date_trunc('day', {instant})"
        f" else date_trunc('day', timezone({zone}, timezone('UTC', {instant}))) end"
    )
    return f"timezone('UTC', timezone({zone}, {local_day} + to_seconds({seconds})))"
