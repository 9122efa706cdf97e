"""Deterministic benchmark data, generated set-based inside DuckDB.

``nudge.devtools.sample.generator`` is realistic but produces messages one at a time in Python (tens of
thousands per second): too slow for 10M events. Here every value is a function of (seed, row
number) through DuckDB's ``hash``, so the same scale and seed give the same rows, and 10M events
take seconds. The rows are written straight into landing parquet files (the schema of
``nudge.core.landing.writer.LANDING_SCHEMA``, file names from ``landing_file_name``), the form the
loader reads; the benchmark's *landing* stage separately times the real ``land_messages`` path
on the incremental batch (``incremental_messages``).

Shape of the data (per user): an identify at signup with traits (email for 90%, first_name,
plan, age, country, timezone, created_at as ISO text or unix seconds, trial_ends_at, tags, phone
for 30%, unsubscribed for 3%, topic preferences for half), a ``signed_up`` track, for 10% a later
identify moving to the team plan, for 20% anonymous browsing linked by the signup identify, for
5% an alias, for 0.1% a delete. The remaining events (track and page calls) fall on users with a
skewed activity distribution, between the user's signup and ``end``; 0.5% are delivered twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from nudge.core.landing.messages import LANDING_COLUMNS
from nudge.core.landing.writer import landing_file_name

ROWS_PER_GENERATED_FILE = 1_000_000
# Messages per user that do not come from the activity stream (identify, signed_up, extras).
_FIXED_PER_USER = 2.35

_SETUP = """
create or replace macro rnd(i, k) as (hash(i, k, getvariable('seed')) % 1000000) / 1000000.0;
create or replace macro pick(i, k, options) as options[1 + (hash(i, k, getvariable('seed')) % len(options))::int];
"""

_USERS = """
create or replace table bench_users as
with base as (
    select
        i,
        'u' || lpad(i::varchar, 7, '0') as user_id,
        getvariable('end_at') - to_seconds((rnd(i, 1) * getvariable('days') * 86400)::bigint) as signup_at,
        rnd(i, 2) as r_plan,
        rnd(i, 3) as r_email,
        rnd(i, 4) as r_anon,
        rnd(i, 5) as r_extra
    from range(1, getvariable('users') + 1) t(i)
)
select
    *,
    case when r_plan < 0.6 then 'free' when r_plan < 0.85 then 'pro' else 'team' end as plan,
    case when r_anon < 0.2 then 'a' || i::varchar end as anonymous_id
from base
"""

_TRAITS = """
json_object(
    'email', case when u.r_email < 0.9 then 'user' || u.i::varchar || '@' || pick(u.i, 6, ['example.com', 'example.org', 'example.net']) end,
    'first_name', pick(u.i, 7, ['Ada', 'Alan', 'Amara', 'Bea', 'Carlos', 'Dana', 'Eli', 'Fatima', 'Grace', 'Hiro', 'Ines', 'Jonas']),
    'plan', u.plan,
    'age', 18 + (rnd(u.i, 8) * 50)::int,
    'country', pick(u.i, 9, ['US', 'DE', 'FR', 'GB', 'JP', 'BR', 'IN']),
    'timezone', pick(u.i, 10, ['America/New_York', 'Europe/Berlin', 'Europe/Paris', 'Europe/London', 'Asia/Tokyo', 'America/Sao_Paulo', 'Asia/Kolkata', 'Mars/Olympus']),
    'created_at', case when rnd(u.i, 11) < 0.8
        then to_json(strftime(u.signup_at, '%Y-%m-%dT%H:%M:%SZ'))
        else to_json(epoch(u.signup_at)::bigint) end,
    'trial_ends_at', strftime(u.signup_at + interval 14 days, '%Y-%m-%dT%H:%M:%SZ'),
    'tags', case when rnd(u.i, 12) < 0.05 then ['beta'] when rnd(u.i, 12) < 0.07 then ['alpha', 'beta'] else ['early'] end,
    'phone', case when rnd(u.i, 13) < 0.3 then '+1555' || lpad(u.i::varchar, 7, '0') end,
    'unsubscribed', case when rnd(u.i, 14) < 0.03 then true end,
    'cio_subscription_preferences', case when rnd(u.i, 15) < 0.5 then json_object('topics', json_object(
        'newsletter', rnd(u.i, 16) < 0.4, 'product_updates', rnd(u.i, 17) > 0.1)) end
)
"""

# Messages every user (or a fraction of users) gets once: identify at signup, signed_up, later
# plan change, alias of a second anonymous id, delete.
_USER_MESSAGES = f"""
select 'id-' || u.i::varchar as message_id, 'identify' as type, u.user_id, u.anonymous_id,
       null as previous_id, null as event, null as name, u.signup_at as timestamp,
       null as properties, json_strip_nulls({_TRAITS})::varchar as traits
from bench_users u
union all
select 'su-' || u.i::varchar, 'track', u.user_id, null, null, 'signed_up', null,
       u.signup_at + interval 1 second, json_object('plan', u.plan)::varchar, null
from bench_users u
union all
select 'pc-' || u.i::varchar, 'identify', u.user_id, null, null, null, null,
       u.signup_at + to_seconds(((getvariable('end_at') - u.signup_at) * rnd(u.i, 20)).epoch()::bigint),
       null, json_object('plan', 'team')::varchar
from bench_users u where u.r_extra < 0.1
union all
select 'al-' || u.i::varchar, 'alias', u.user_id, null, 'b' || u.i::varchar, null, null,
       u.signup_at + interval 2 second, null, null
from bench_users u where u.r_extra >= 0.1 and u.r_extra < 0.15
union all
select 'bp-' || u.i::varchar, 'page', null, 'b' || u.i::varchar, null, null, 'Pricing',
       u.signup_at - interval 1 hour, json_object('path', '/pricing')::varchar, null
from bench_users u where u.r_extra >= 0.1 and u.r_extra < 0.15
union all
select 'del-' || u.i::varchar, 'delete', u.user_id, null, null, null, null,
       getvariable('end_at') - interval 1 day, null, null
from bench_users u where u.r_extra >= 0.999
"""

# The activity stream: rows first..last of a skewed (squared uniform) distribution over users,
# stamped between the user's signup and ``end_at`` (or inside ``(from_at, to_at]`` when set).
_ACTIVITY = """
with picks as (
    select j, 1 + (getvariable('users') * rnd(j, 30) * rnd(j, 30))::bigint % getvariable('users') as ui,
           rnd(j, 31) as r_kind
    from range(getvariable('first'), getvariable('last')) t(j)
),
stamped as (
    select p.*, u.user_id, u.anonymous_id, u.plan,
           case when getvariable('from_at') is null
                then u.signup_at + to_seconds(((getvariable('end_at') - u.signup_at) * rnd(p.j, 32)).epoch()::bigint)
                else getvariable('from_at') + to_seconds((rnd(p.j, 32) * 3600)::bigint) end as timestamp
    from picks p join bench_users u on u.i = p.ui
)
select
    'ev-' || j::varchar as message_id,
    case when r_kind < 0.6 then 'track' when r_kind < 0.8 then 'page' else 'track' end as type,
    case when anonymous_id is not null and rnd(j, 33) < 0.1 then null else user_id end as user_id,
    case when anonymous_id is not null and rnd(j, 33) < 0.1 then anonymous_id end as anonymous_id,
    null as previous_id,
    case
        when r_kind < 0.4 then 'logged_in'
        when r_kind < 0.45 then 'project_created'
        when r_kind < 0.5 then 'order_completed'
        when r_kind < 0.599 then 'invite_sent'
        when r_kind < 0.6 then 'account_closed'
        when r_kind < 0.8 then null
        else 'feature_used'
    end as event,
    case when r_kind >= 0.6 and r_kind < 0.8 then pick(j, 34, ['Dashboard', 'Pricing', 'Settings']) end as name,
    timestamp,
    case
        when r_kind >= 0.45 and r_kind < 0.5 then json_object(
            'order_id', 'o' || j::varchar, 'amount', 5 + (rnd(j, 35) * 300)::int,
            'currency', pick(j, 36, ['USD', 'EUR', 'GBP']), 'plan', plan)::varchar
        when r_kind >= 0.4 and r_kind < 0.45 then json_object('template', pick(j, 37, ['kanban', 'roadmap', 'blank']))::varchar
        when r_kind >= 0.6 and r_kind < 0.8 then json_object('path', '/' || pick(j, 34, ['dashboard', 'pricing', 'settings']))::varchar
        when r_kind >= 0.8 then json_object('feature', pick(j, 38, ['search', 'export', 'comments', 'labels']))::varchar
        else '{}'
    end as properties,
    null as traits
from stamped
"""

_LANDING_SELECT = """
select message_id, type, user_id, anonymous_id, previous_id, null::varchar as group_id, event, name,
       timestamp::timestamp as timestamp,
       (timestamp + to_seconds(1 + (rnd(hash(message_id), 40) * 59)::bigint))::timestamp as received_at,
       properties, traits, '{"library":{"name":"nudge-bench"}}' as context
from generated
"""


def _connect(
    scratch: Path, *, seed: int, users: int, days: int, end: datetime
) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(scratch))
    con.execute("set preserve_insertion_order = false")
    con.execute("set enable_progress_bar = false")
    for name, value in (("seed", seed), ("users", users), ("days", days), ("end_at", end)):
        con.execute(f"set variable {name} = ?", [value])
    con.execute("set variable from_at = null::timestamp")
    con.execute(_SETUP)
    con.execute(_USERS)
    return con


def _activity_rows(events: int, users: int) -> int:
    return max(events - int(users * _FIXED_PER_USER), 0)


def generate_landing(
    landing_dir: Path,
    scratch_dir: Path,
    *,
    users: int,
    events: int,
    days: int,
    end: datetime,
    seed: int = 7,
) -> int:
    """Write about ``events`` landing rows for ``users`` users over ``days`` days before ``end``
    into ``landing_dir`` as parquet files. Returns the number of rows written."""
    landing_dir.mkdir(parents=True, exist_ok=True)
    scratch_dir.mkdir(parents=True, exist_ok=True)
    scratch = scratch_dir / "generate.duckdb"
    scratch.unlink(missing_ok=True)
    con = _connect(scratch, seed=seed, users=users, days=days, end=end)
    try:
        con.execute("set variable first = 0")
        con.execute("set variable last = ?", [_activity_rows(events, users)])
        con.execute(
            f"create table generated as {_USER_MESSAGES} union all ({_ACTIVITY})"
            " union all select * from (" + _ACTIVITY + ") where rnd(hash(message_id), 39) < 0.005"
        )
        con.execute(f"create table landing as {_LANDING_SELECT}")
        total = con.execute("select count(*) from landing").fetchone()[0]
        columns = ", ".join(f'"{c}"' for c in LANDING_COLUMNS)
        for start in range(0, total, ROWS_PER_GENERATED_FILE):
            target = landing_dir / landing_file_name()
            con.execute(
                f"copy (select {columns} from landing where rowid >= {start} "
                f"and rowid < {start + ROWS_PER_GENERATED_FILE}) "
                f"to '{target}' (format parquet, compression zstd)"
            )
        return int(total)
    finally:
        con.close()
        scratch.unlink(missing_ok=True)


def incremental_messages(
    scratch_dir: Path,
    *,
    users: int,
    events: int,
    days: int,
    end: datetime,
    after: datetime,
    seed: int = 7,
) -> list[dict[str, Any]]:
    """``events`` new Segment-spec messages (track and page calls of the same users), stamped in
    the hour after ``after``, with message ids that do not collide with ``generate_landing``'s."""
    scratch_dir.mkdir(parents=True, exist_ok=True)
    scratch = scratch_dir / "incremental.duckdb"
    scratch.unlink(missing_ok=True)
    con = _connect(scratch, seed=seed, users=users, days=days, end=end)
    try:
        first = 10 * (events + users * 10) + 1_000_000_000
        con.execute("set variable first = ?", [first])
        con.execute("set variable last = ?", [first + events])
        con.execute("set variable from_at = ?", [after])
        rows = con.execute(
            f"select message_id, type, user_id, anonymous_id, event, name, timestamp, properties "
            f"from ({_ACTIVITY}) order by message_id"
        ).fetchall()
    finally:
        con.close()
        scratch.unlink(missing_ok=True)
    return list(_segment_messages(rows))


def _segment_messages(rows: list[tuple[Any, ...]]) -> Iterator[dict[str, Any]]:
    for message_id, kind, user_id, anonymous_id, event, name, timestamp, properties in rows:
        message: dict[str, Any] = {
            "messageId": message_id,
            "type": kind,
            "timestamp": timestamp.isoformat() + "Z",
            "properties": json.loads(properties),
            "context": {"library": {"name": "nudge-bench"}},
        }
        if user_id is not None:
            message["userId"] = user_id
        if anonymous_id is not None:
            message["anonymousId"] = anonymous_id
        if event is not None:
            message["event"] = event
        if name is not None:
            message["name"] = name
        yield message


def end_of_data() -> datetime:
    """The instant the generated history ends (naive UTC): the first run's as_of."""
    return datetime(2026, 11, 1, 15, 0)


def incremental_as_of() -> datetime:
    return end_of_data() + timedelta(hours=1)
