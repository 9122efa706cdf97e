"""Invariants of the delivery ledger, checked after every send (non-blocking asset checks).

The primary key already forbids a key in the ledger twice, so exactly-once is checked where it can
still break: two sent messages for the same journey step of the same entry (two keys for one
message), a sent row with no outbox row behind it, and a marketing message sent to someone who had
opted out. The opt-out check reads ``marts.dim_users`` as it is right after the send, which is the
state at the run's ``as_of``, and looks only at that run's sends.
"""

import dagster as dg
import duckdb

from nudge.core.dsl.spec import Content
from nudge.core.opt_out import opt_out_values_sql, topic_off_sql, unsubscribed_sql
from nudge.core.warehouse.connection import connect
from orchestration.asset_keys import LEDGER
from orchestration.location import load_location

SAMPLE = 5


def duplicate_sends(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    """(journey, entry_id, step, sent rows) with more than one sent row."""
    return con.execute(
        """select o.journey, o.entry_id, o.step, count(*) as sent
           from nudge.delivery_ledger l join nudge.outbox o using (idempotency_key)
           where l.status = 'sent'
           group by all having count(*) > 1 order by all"""
    ).fetchall()


def sends_without_outbox(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    """(idempotency_key, user_id) of sent ledger rows no outbox row explains."""
    return con.execute(
        """select l.idempotency_key, l.user_id
           from nudge.delivery_ledger l anti join nudge.outbox o using (idempotency_key)
           where l.status = 'sent' order by all"""
    ).fetchall()


def sends_to_opted_out(
    con: duckdb.DuckDBPyConnection, content: Content, run_id: str
) -> list[tuple]:
    """(user_id, journey, step, why) of this run's non-transactional sends to a user who had
    opted out (``nudge.core.opt_out``: unsubscribed, or the message's topic off on its channel)."""
    defaults = [(t.name, t.default_subscribed) for t in content.topics] or [("", True)]
    values = ", ".join("(?, ?)" for _ in defaults)
    params = [v for pair in defaults for v in pair]
    unsubscribed = unsubscribed_sql("u", "o.channel")
    return con.execute(
        f"""with topic_defaults(topic, default_subscribed) as (values {values})
            select l.user_id, l.journey, l.step,
                   case when {unsubscribed} then 'unsubscribed'
                        else 'topic off: ' || o.topic || ' on ' || o.channel end as why
            from nudge.delivery_ledger l
            join nudge.outbox o using (idempotency_key)
            join (select *, {opt_out_values_sql("traits")} from marts.dim_users) u
              on u.user_id = l.user_id
            left join topic_defaults d on d.topic = o.topic
            where l.status = 'sent' and l.run_id = ? and not o.transactional
              and ({unsubscribed} or {topic_off_sql("u", "o.topic", "o.channel", "d.default_subscribed")})
            order by all""",
        [*params, run_id],
    ).fetchall()


def _result(problems: list[tuple], what: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=not problems,
        description=f"{len(problems)} {what}" if problems else f"no {what}",
        metadata={"count": len(problems), "sample": [list(map(str, p)) for p in problems[:SAMPLE]]},
    )


def _warehouse() -> duckdb.DuckDBPyConnection:
    return connect(load_location().workspace.warehouse_path, read_only=True)


@dg.asset_check(
    asset=LEDGER,
    blocking=False,
    description="No journey step of an entry sent twice (two keys for one message).",
)
def one_send_per_entry_step() -> dg.AssetCheckResult:
    with _warehouse() as con:
        return _result(duplicate_sends(con), "entry steps sent more than once")


@dg.asset_check(
    asset=LEDGER, blocking=False, description="Every sent ledger row has its outbox row."
)
def every_send_has_an_outbox_row() -> dg.AssetCheckResult:
    with _warehouse() as con:
        return _result(sends_without_outbox(con), "sent rows without an outbox row")


@dg.asset_check(
    asset=LEDGER,
    blocking=False,
    description="No non-transactional message of this run sent to an unsubscribed user or to "
    "a user whose topic preference is off.",
)
def no_marketing_to_opted_out(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    with _warehouse() as con:
        problems = sends_to_opted_out(con, load_location().content, context.run.run_id)
    return _result(problems, "non-transactional sends to opted-out users")


def delivery_checks() -> list[dg.AssetChecksDefinition]:
    return [one_send_per_entry_step, every_send_has_an_outbox_row, no_marketing_to_opted_out]
