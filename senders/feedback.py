"""Fold what providers reported (delivered, bounced, complained, opened, clicked) into the ledger.

The collector lands each provider callback as a track event (``collector.feedback``); the load
stage puts it in ``raw.events``. Before each dispatch, ``apply_feedback`` records the reports it
has not seen in ``nudge.delivery_feedback``, moves the ledger row of each message forward, and
adds the addresses that must never be sent to again to ``nudge.suppressed_addresses``, which the
send policy drops (``senders.policy``).

A ledger row only moves forward: ``sent`` < ``delivered`` < ``opened`` < ``clicked``, and
``bounced`` or ``spammed`` end it. A report about a message the ledger does not hold as sent (a
failed one, another workspace's) is kept in ``nudge.delivery_feedback`` and changes nothing.
Nothing here can make a message go out again: retries only take ``failed`` rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

FEEDBACK_EVENT_NAMES = (
    "Email Delivered",
    "Email Bounced",
    "Email Marked as Spam",
    "Email Opened",
    "Email Link Clicked",
    "SMS Delivered",
    "SMS Bounced",
)
# Where the collector takes each provider's callbacks (``collector.feedback``); the senders put
# the twilio one in each message's StatusCallback.
CALLBACK_PATHS = {"twilio": "/webhooks/twilio", "sendgrid": "/webhooks/sendgrid",
                  "postmark": "/webhooks/postmark"}  # fmt: skip
# The message's ids as every provider carries them back (custom args, metadata, callback query).
DELIVERY_ID_KEY, USER_ID_KEY = "nudge_delivery_id", "nudge_user_id"
# The order a ledger row moves in; bounced and spammed end it.
_RANK = {"sent": 0, "delivered": 1, "opened": 2, "clicked": 3, "bounced": 9, "spammed": 9}


@dataclass(frozen=True)
class FeedbackApplied:
    reports: int
    ledger_rows: int
    suppressed: int


def _rank(column: str) -> str:
    cases = " ".join(f"when '{status}' then {rank}" for status, rank in _RANK.items())
    return f"(case {column} {cases} else null end)"


def apply_feedback(con: duckdb.DuckDBPyConnection, *, now: datetime) -> FeedbackApplied:
    """Record new provider reports, move ledger rows forward and suppress dead addresses."""
    names = ", ".join(f"'{name}'" for name in FEEDBACK_EVENT_NAMES)
    con.execute("begin")
    try:
        con.execute(
            f"""
            create or replace temp table _nudge_new_feedback as
            select e.message_id,
                   e.properties ->> 'delivery_id' as delivery_id,
                   e.user_id,
                   e.properties ->> 'channel' as channel,
                   e.properties ->> 'status' as status,
                   e.properties ->> 'provider' as provider,
                   lower(e.properties ->> 'address') as address,
                   e.properties ->> 'reason' as reason,
                   coalesce(try_cast(e.properties ->> 'suppress_address' as boolean), false)
                       as suppress_address,
                   e.timestamp as occurred_at,
                   cast($now as timestamp) as applied_at
            from raw.events e
            where e.type = 'track' and e.event in ({names})
              and e.properties ->> 'delivery_id' is not null
              and e.properties ->> 'status' in ({", ".join(f"'{s}'" for s in _RANK if s != "sent")})
              and e.message_id not in (select message_id from nudge.delivery_feedback)
            qualify row_number() over (partition by e.message_id order by e.loaded_at) = 1
            """,
            {"now": now},
        )
        con.execute("insert into nudge.delivery_feedback select * from _nudge_new_feedback")
        (reports,) = con.execute("select count(*) from _nudge_new_feedback").fetchone()
        moved = len(
            con.execute(
                f"""
            with latest as (
                select delivery_id, status, reason from _nudge_new_feedback
                qualify row_number() over (
                    partition by delivery_id order by {_rank("status")} desc, occurred_at desc
                ) = 1
            )
            update nudge.delivery_ledger l
               set status = latest.status,
                   reason = coalesce(latest.reason, l.reason)
              from latest
             where l.delivery_id = latest.delivery_id
               and {_rank("l.status")} is not null
               and {_rank("l.status")} < 9
               and {_rank("latest.status")} > {_rank("l.status")}
            returning 1
            """
            ).fetchall()
        )
        suppressed = len(
            con.execute(
                """
            insert into nudge.suppressed_addresses
            select channel, address, any_value(status || coalesce(': ' || reason, '')), $now
            from _nudge_new_feedback
            where suppress_address and address is not null
            group by channel, address
            on conflict do nothing
            returning 1
            """,
                {"now": now},
            ).fetchall()
        )
        con.execute("drop table _nudge_new_feedback")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return FeedbackApplied(reports, moved, suppressed)
