"""Every send policy, in one place, decided set-based in SQL over the pending outbox.

For each outbox row not yet in the delivery ledger (and queued at or before ``as_of``), one
decision, the first that applies in this order:

=================  ==============  ========================================================
status             reason          when
=================  ==============  ========================================================
held               journey paused  the journey is paused (``nudge journeys pause``): the row
                                   stays pending and goes out at the first dispatch after resume
skipped            holdout         the entry is in the journey's control group
dropped            user deleted    the user is not in ``marts.dim_users`` (deleted/suppressed)
dropped            suppressed ...  the address hard-bounced, complained or does not exist
                                   (``nudge.suppressed_addresses``, ``senders.feedback``), or
                                   is an email suppressed by a Track API call addressed by
                                   it (``marts.dim_suppressed_emails``); transactional too
skipped            unsubscribed    not transactional, email, sms or push, globally opted out
                                   (``nudge.core.opt_out``)
skipped            topic unsub...  not transactional, topic preference off on the row's channel
                                   (or default off): ``topic unsubscribed: <topic> on <channel>``
undeliverable      no address      no email / phone / device / URL for the channel
undeliverable      not one email   the email trait is not one bare address (``senders.addresses``:
                   address         a display name or a list would dodge the suppression list)
held               quiet hours     not transactional, not in_app, inside quiet hours: the
                                   row stays pending and goes out at the first later dispatch
undeliverable      frequency cap   not transactional, not in_app, over a cap counting the
                                   person's sends in the ledger (to any id merged into them;
                                   not those of the transactional API, which have no journey)
                                   and earlier sends of this same dispatch
send               (none)          everything else
=================  ==============  ========================================================

Caps are applied conservatively when several caps overlap: a row blocked by one cap still takes
its place in the count of the others, so a dispatch may send fewer than the caps allow, never more.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

import duckdb
import polars as pl

from nudge.core.clock import clock_time, clock_window_state, user_zone
from nudge.core.dsl.spec import Content, FrequencyCap, QuietHours, Template
from nudge.core.identity import merged_users
from nudge.core.opt_out import opt_out_values_sql, topic_off_sql, unsubscribed_sql
from senders.addresses import BARE_MAILBOX_PATTERN, NOT_ONE_ADDRESS
from senders.ledger import retryable

DECISION_STATUSES = ("send", "held", "skipped", "dropped", "undeliverable")
DEFAULT_TIMEZONE_ATTRIBUTE = "timezone"


def _pending_sql(channels: Collection[str] | None) -> str:
    """Outbox rows queued at or before ``$as_of`` (of ``$channels``) not yet in the ledger, or
    in it as a transient failure whose next attempt is due."""
    only = "" if channels is None else "and list_contains($channels, o.channel)"
    return f"""
    select o.*
    from nudge.outbox o
    where o.as_of <= $as_of {only}
      and not exists (
        select 1 from nudge.delivery_ledger l
        where l.idempotency_key = o.idempotency_key
          and not ({retryable("l")} and l.next_attempt_at <= $as_of)
      )
    """


class PolicyError(RuntimeError):
    """The warehouse is not in a state where policies can be evaluated."""


def _relation_exists(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    """A table or view (the catalog functions, about 6x faster than ``information_schema``)."""
    rows = con.execute(
        """select 1 from duckdb_tables() where schema_name = $schema and table_name = $name
           union all
           select 1 from duckdb_views() where schema_name = $schema and view_name = $name""",
        {"schema": schema, "name": name},
    ).fetchall()
    return bool(rows)


def _devices_sql(con: duckdb.DuckDBPyConnection) -> str:
    """Each user's registered push tokens (``marts.dim_user_devices``, built from the Track API's
    device calls), most recently used first, separated by spaces (the push message's address: FCM
    tokens hold no spaces). The one place that knows where devices come from."""
    if not _relation_exists(con, "marts", "dim_user_devices"):
        return "select null::varchar as user_id, null::varchar as token where false"
    return """select user_id, string_agg(token, ' ' order by last_used desc, token) as token
        from (select user_id, device_id as token,
                     max(coalesce(last_used_at, '-infinity'::timestamp)) as last_used
              from marts.dim_user_devices where nullif(trim(device_id), '') is not null
              group by all)
        group by user_id"""


def _suppressed_addresses_sql(con: duckdb.DuckDBPyConnection) -> str:
    """Addresses never to send to, ``(channel, address, reason)``, one row per address: dead
    ones and email addresses suppressed by a call addressed by email (lower case, both)."""
    dead = "select channel, address, reason from nudge.suppressed_addresses"
    if not _relation_exists(con, "marts", "dim_suppressed_emails"):
        return dead
    return f"""select channel, address, min(reason) as reason
        from ({dead} union all
              select 'email', email, 'suppressed' from marts.dim_suppressed_emails)
        group by all"""


_USERS = f"(select *, {opt_out_values_sql('traits')} from marts.dim_users)"
_UNSUBSCRIBED = unsubscribed_sql("u", "p.channel")
_TOPIC_OFF = topic_off_sql("u", "p.topic", "p.channel", "td.default_subscribed")
# A user's address on the channels addressed from ``marts.dim_users`` (``u``); also what a
# preview or test send (``senders.one_off``) reads.
USER_ADDRESS_SQL = {
    "email": "nullif(trim(cast(u.email as varchar)), '')",
    "sms": "nullif(trim(cast(u.phone as varchar)), '')",
}
_ADDRESS = f"""case p.channel
        when 'email' then {USER_ADDRESS_SQL["email"]}
        when 'sms' then {USER_ADDRESS_SQL["sms"]}
        when 'in_app' then p.user_id
        when 'push' then dv.token
        else ta.template_address
    end"""

# The policies in order, first match wins: (condition on the pending row p, user u, ..., status,
# reason as SQL). Rendered as two CASE columns, status and reason, which every warehouse reads.
_DECISION_RULES: tuple[tuple[str, str, str], ...] = (
    ("coalesce(jc.paused, false)", "held", "'journey paused'"),
    ("p.holdout", "skipped", "'holdout'"),
    ("u.user_id is null", "dropped", "'user deleted'"),
    (
        "sa.suppressed_reason is not null",
        "dropped",
        "'suppressed address: ' || sa.suppressed_reason",
    ),
    (f"not p.transactional and {_UNSUBSCRIBED}", "skipped", "'unsubscribed'"),
    (
        f"not p.transactional and {_TOPIC_OFF}",
        "skipped",
        "'topic unsubscribed: ' || p.topic || ' on ' || p.channel",
    ),
    (f"({_ADDRESS}) is null", "undeliverable", "'no address'"),
    (
        f"p.channel = 'email'"
        f" and not regexp_matches({USER_ADDRESS_SQL['email']}, '{BARE_MAILBOX_PATTERN}')",
        "undeliverable",
        f"'{NOT_ONE_ADDRESS}'",
    ),
    (
        "not p.transactional and p.channel <> 'in_app' and coalesce(q.quiet, false)",
        "held",
        "'quiet hours'",
    ),
)
_DECISION = (
    "case "
    + " ".join(f"when {when} then '{status}'" for when, status, _ in _DECISION_RULES)
    + " else 'send' end as status,\n               case "
    + " ".join(f"when {when} then {reason}" for when, _, reason in _DECISION_RULES)
    + " else null end as reason"
)


def template_address(template: Template) -> str | None:
    """Webhook templates are addressed to their URL; slack ones to their URL or the provider's
    hook; other channels address people, not templates (None)."""
    if template.channel not in ("webhook", "slack"):
        return None
    return (
        str(template.fields.get("url") or ("slack" if template.channel == "slack" else "")) or None
    )


def _template_addresses(content: Content) -> pl.DataFrame:
    rows = [
        (t.name, template_address(t))
        for t in content.templates
        if t.channel in ("webhook", "slack")
    ]
    return pl.DataFrame(
        rows, schema={"template": pl.String, "template_address": pl.String}, orient="row"
    )


def _topic_defaults(content: Content) -> pl.DataFrame:
    rows = [(t.name, t.default_subscribed) for t in content.topics]
    return pl.DataFrame(
        rows, schema={"topic": pl.String, "default_subscribed": pl.Boolean}, orient="row"
    )


def in_quiet_hours(quiet: QuietHours, as_of: datetime, timezone: str | None) -> bool:
    """Whether ``as_of`` (naive UTC) falls in the quiet window in ``timezone`` (else the default).

    ``to`` before ``from`` wraps midnight; equal times mean no quiet hours."""
    if quiet.start == quiet.end:
        return False
    start, end = clock_time(quiet.start, "quiet_hours"), clock_time(quiet.end, "quiet_hours")
    zone = user_zone(timezone, quiet.default_timezone)
    return clock_window_state(start, end, zone, as_of)[0]


def _quiet_table(
    con: duckdb.DuckDBPyConnection,
    quiet: QuietHours | None,
    as_of: datetime,
    pending: tuple[str, dict[str, object]],
    tz_path: str,
) -> pl.DataFrame:
    """``(tz, quiet)`` for every distinct time zone among pending users ('' = no zone trait).

    Zones are few, so they are checked in Python (``zoneinfo``): an unknown zone name falls back
    to the default zone instead of failing the whole query."""
    if quiet is None:
        return pl.DataFrame(schema={"tz": pl.String, "quiet": pl.Boolean})
    pending_sql, pending_params = pending
    zones = con.execute(
        f"""select distinct coalesce(json_extract_string(u.traits, $tz_path), '')
            from ({pending_sql}) p join marts.dim_users u on u.user_id = p.user_id""",
        {**pending_params, "tz_path": tz_path},
    ).fetchall()
    rows = [(tz, in_quiet_hours(quiet, as_of, tz)) for (tz,) in zones]
    return pl.DataFrame(rows, schema={"tz": pl.String, "quiet": pl.Boolean}, orient="row")


def _cap_sql(index: int, cap: FrequencyCap, merged: str) -> tuple[str, str]:
    """A CTE counting prior sends under ``cap`` and the condition that blocks a row. A send
    counts for the person its id is now part of (``merged``: ``(user_id, merged_into)``), whose
    id the pending rows already carry (``journeys.merges``)."""
    scope = "" if cap.channel == "any" else f" and l.channel = $cap{index}_channel"
    rank_scope = "" if cap.channel == "any" else f" and c.channel = $cap{index}_channel"
    partition = "c.user_id" if cap.channel == "any" else "c.user_id, c.channel"
    cte = f"""cap{index} as (
        select c.idempotency_key,
               coalesce(prior.sent, 0) + row_number() over (
                   partition by {partition} order by c.as_of, c.created_at, c.idempotency_key
               ) as n
        from capped c
        left join (
            select coalesce(m.merged_into, l.user_id) as user_id, count(*) as sent
            from nudge.delivery_ledger l
            left join nudge.outbox ob on ob.idempotency_key = l.idempotency_key
            left join {merged} m on m.user_id = l.user_id
            where l.status = 'sent' and l.channel <> 'in_app'
              and not coalesce(ob.transactional, false) and l.journey is not null{scope}
              and l.as_of > $as_of - to_seconds({int(cap.per.total_seconds())})
              and l.as_of <= $as_of
            group by 1
        ) prior on prior.user_id = c.user_id
        where true{rank_scope}
    )"""
    blocked = f"exists (select 1 from cap{index} k where k.idempotency_key = d.idempotency_key and k.n > {cap.max})"
    return cte, blocked


def evaluate_policies(
    con: duckdb.DuckDBPyConnection,
    *,
    as_of: datetime,
    content: Content,
    channels: Collection[str] | None = None,
) -> pl.DataFrame:
    """One row per pending outbox row (of ``channels``, default all): the outbox columns,
    ``traits`` (JSON text), ``address``, ``status`` (one of ``DECISION_STATUSES``) and ``reason``;
    ordered as they should be sent."""
    if not _relation_exists(con, "marts", "dim_users"):
        raise PolicyError(
            "marts.dim_users does not exist: build the dbt project before dispatching sends"
        )
    policies = content.policies
    tz_attribute = DEFAULT_TIMEZONE_ATTRIBUTE
    if policies.quiet_hours and policies.quiet_hours.timezone_attribute:
        tz_attribute = policies.quiet_hours.timezone_attribute
    tz_path = f'$."{tz_attribute}"'
    pending_sql = _pending_sql(channels)
    pending_params: dict[str, object] = {"as_of": as_of}
    if channels is not None:
        pending_params["channels"] = list(channels)
    quiet = _quiet_table(con, policies.quiet_hours, as_of, (pending_sql, pending_params), tz_path)
    params = {**pending_params, "tz_path": tz_path}
    # Asked of the catalog only where a cap needs it: every dispatch decides its policies.
    merged = merged_users(con) if policies.frequency_caps else ""
    caps = [_cap_sql(i, cap, merged) for i, cap in enumerate(policies.frequency_caps)]
    for i, cap in enumerate(policies.frequency_caps):
        if cap.channel != "any":
            params[f"cap{i}_channel"] = cap.channel
    cap_ctes = "".join(f", {cte}" for cte, _ in caps)
    cap_blocked = " or ".join(blocked for _, blocked in caps) or "false"
    relations = {
        "_nudge_topic_defaults": _topic_defaults(content),
        "_nudge_template_addresses": _template_addresses(content),
        "_nudge_quiet": quiet,
    }
    sql = f"""
    with pending as ({pending_sql}),
    devices as ({_devices_sql(con)}),
    decided as (
        select p.*,
               cast(u.traits as varchar) as traits,
               {_ADDRESS} as address,
               {_DECISION}
        from pending p
        left join {_USERS} u on u.user_id = p.user_id
        left join nudge.journey_controls jc on jc.journey = p.journey
        left join _nudge_topic_defaults td on td.topic = p.topic
        left join _nudge_template_addresses ta on ta.template = p.template
        left join devices dv on dv.user_id = p.user_id
        -- renamed: a column called address would hide the address computed above
        left join (select channel as suppressed_channel, address as suppressed_address,
                          reason as suppressed_reason from ({_suppressed_addresses_sql(con)})) sa
               on sa.suppressed_channel = p.channel and sa.suppressed_address = lower({_ADDRESS})
        left join _nudge_quiet q
               on q.tz = coalesce(json_extract_string(u.traits, $tz_path), '')
    ),
    capped as (
        select * from decided
        where status = 'send' and not transactional and channel <> 'in_app'
    ){cap_ctes}
    select d.*,
           case when {cap_blocked} then 'undeliverable' else d.status end as capped_status,
           case when {cap_blocked} then 'frequency cap' else d.reason end as capped_reason
    from decided d
    order by d.as_of, d.created_at, d.idempotency_key
    """
    for name, frame in relations.items():
        con.register(name, frame)
    try:
        decisions = con.sql(sql, params=params).pl()
    finally:
        for name in relations:
            con.unregister(name)
    return decisions.with_columns(
        status=pl.col("capped_status"), reason=pl.col("capped_reason")
    ).drop("capped_status", "capped_reason")
