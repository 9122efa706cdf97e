"""Writes to ``nudge.delivery_ledger``: the record that makes every send happen at most once.

The protocol for one batch (``docs/delivery.md``): write the intents (status ``sending``,
``attempted_at`` null) in one committed transaction; then each turn commits the outcomes that came
back and marks the messages that take the free slots handed over, right before their provider
gets them (one message at a time for SMTP, up to ``concurrency`` for HTTP providers). Turns are
committed to the hand-over journal (``senders.handover_journal``, a SQLite file beside the
warehouse: a DuckDB commit per turn cost more than the provider's answer) and folded into the
ledger at the end of each batch (rows still in flight stay in the journal for their outcome). So at any moment the rows handed over without an outcome are at
most the messages in flight.

The primary key on ``idempotency_key`` forbids a second row; dispatch considers keys not yet in
the ledger and failed rows that are due for a retry (``permanent`` false, ``next_attempt_at``
reached). A retry reuses the row: writing its intent moves it from ``failed`` back to ``sending``
(attempts + 1) only if it is still a transient failure, so a key that was sent is never handed to a
provider again.

Rows a crash left in ``sending`` are reconciled by the next dispatch, after it folds the journal
the crash left: never handed over, they are
released (a first attempt's row is deleted, so the outbox row is pending again; a retry's row is
again a transient failure, due now); handed over, their outcome is unknown: failed, permanent,
never resent (``IN_FLIGHT_REASON``).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import duckdb
import polars as pl

from nudge.core.warehouse.connection import transaction
from nudge.core.warehouse.schema import DELIVERY_LEDGER_COLUMNS
from senders.handover_journal import HandoverJournal
from senders.providers import OUTCOME_UNKNOWN, RenderedMessage, SendOutcome
from senders.retry import MAX_ATTEMPTS, backoff_delay

IN_FLIGHT_REASON = f"{OUTCOME_UNKNOWN}: in flight when the run stopped, not resent"

_POLARS_TYPES = {
    "varchar": pl.String,
    "timestamp": pl.Datetime("us"),
    "boolean": pl.Boolean,
    "integer": pl.Int32,
}
LEDGER_COLUMNS = tuple(name for name, _, _ in DELIVERY_LEDGER_COLUMNS)
LEDGER_SCHEMA = {name: _POLARS_TYPES[kind] for name, kind, _ in DELIVERY_LEDGER_COLUMNS}
_COLUMN_LIST = ", ".join(LEDGER_COLUMNS)
# What a retry overwrites; queued_at, delivery_id and the message's identity stay.
_RETRY_UPDATE = ", ".join(
    f"{c} = excluded.{c}"
    for c in (
        "run_id", "as_of", "provider", "address", "status", "reason", "provider_message_id",
        "attempted_at", "completed_at", "permanent", "next_attempt_at", "details",
    )
)  # fmt: skip


def retryable(table: str) -> str:
    """SQL: the ledger row ``table`` is a transient failure waiting for a retry. Rows written
    before retries existed have no ``next_attempt_at`` and are never retried."""
    return (
        f"{table}.status = 'failed' and not coalesce({table}.permanent, false) "
        f"and {table}.next_attempt_at is not null"
    )


@contextmanager
def _registered(con: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame) -> Iterator[None]:
    con.register(name, frame)
    try:
        yield
    finally:
        con.unregister(name)


def ledger_rows(
    decisions: pl.DataFrame, *, run_id: str, as_of: datetime, now: datetime
) -> pl.DataFrame:
    """Ledger rows from decided outbox rows (outbox columns plus ``status``, ``reason``,
    ``address`` and optionally ``provider``). ``queued_at`` is the outbox row's ``created_at``;
    a ``sending`` row counts one attempt and gets ``attempted_at`` only when it is handed over
    (``hand_over``); any other row is complete ``now``. A ``failed`` decision (no provider, render
    error) is permanent: retrying cannot fix it."""
    sending = pl.col("status") == "sending"
    frame = decisions.with_columns(
        pl.lit(run_id).alias("run_id"),
        pl.lit(as_of).cast(pl.Datetime("us")).alias("as_of"),
        pl.col("created_at").alias("queued_at"),
        pl.lit(None, pl.Datetime("us")).alias("attempted_at"),
        pl.when(~sending).then(pl.lit(now)).alias("completed_at"),
        pl.lit(None, pl.String).alias("provider_message_id"),
        (pl.col("status") == "failed").alias("permanent"),
        sending.cast(pl.Int32).alias("attempts"),
        pl.lit(None, pl.Datetime("us")).alias("next_attempt_at"),
    )
    for optional in ("provider", "journey_version", "details"):
        if optional not in frame.columns:
            frame = frame.with_columns(pl.lit(None, pl.String).alias(optional))
    return frame.select(pl.col(name).cast(dtype) for name, dtype in LEDGER_SCHEMA.items())


def _insert(con: duckdb.DuckDBPyConnection, rows: pl.DataFrame) -> list[tuple[str, str, int]]:
    """Insert ledger rows; a key already present is overwritten only while it is a transient
    failure due for retry (its attempts add up), otherwise left alone. ``(key, status,
    attempts)`` of the rows written."""
    if rows.is_empty():
        return []
    with _registered(con, "_nudge_ledger_rows", rows.select(LEDGER_COLUMNS)):
        return con.execute(
            f"""insert into nudge.delivery_ledger ({_COLUMN_LIST})
                select {_COLUMN_LIST} from _nudge_ledger_rows
                on conflict (idempotency_key) do update set {_RETRY_UPDATE},
                    attempts = coalesce(delivery_ledger.attempts, 0) + excluded.attempts
                where {retryable("delivery_ledger")}
                returning idempotency_key, status, attempts"""
        ).fetchall()


def record_decisions(con: duckdb.DuckDBPyConnection, rows: pl.DataFrame) -> int:
    """Bulk insert final rows (skipped, dropped, undeliverable, failed) built by ``ledger_rows``.
    Returns how many were written."""
    return len(_insert(con, rows))


def record_intents(con: duckdb.DuckDBPyConnection, rows: pl.DataFrame) -> dict[str, int]:
    """Write a batch in one committed transaction: ``sending`` rows are intents, other rows (render
    errors of the same batch) are final. Returns the keys whose intent was written, with their
    attempt number: only those may be handed to a provider."""
    with transaction(con):
        written = _insert(con, rows)
    return {key: attempts for key, status, attempts in written if status == "sending"}


def _outcome_row(
    message: RenderedMessage, outcome: SendOutcome, attempts: int, as_of: datetime
) -> dict[str, object]:
    """A transient failure is scheduled again after a jittered backoff (or the provider's
    Retry-After) until ``MAX_ATTEMPTS``; then it becomes permanent."""
    reason, permanent, next_attempt_at = outcome.reason, outcome.permanent, None
    if outcome.status == "failed" and not permanent:
        if attempts >= MAX_ATTEMPTS:
            permanent = True
            reason = f"{reason} (gave up after {attempts} attempts)"
        else:
            delay = backoff_delay(
                message.idempotency_key, attempts, retry_after=outcome.retry_after
            )
            next_attempt_at = as_of + delay
    return {
        "key": message.idempotency_key,
        "status": outcome.status,
        "reason": reason,
        "provider_message_id": outcome.provider_message_id,
        "permanent": permanent if outcome.status == "failed" else None,
        "next_attempt_at": next_attempt_at,
        "details": json.dumps(outcome.details, sort_keys=True) if outcome.details else None,
    }


@dataclass(frozen=True)
class Outcome:
    """What the provider answered for one handed-over message; ``attempts`` is its attempt number
    (from ``record_intents``)."""

    message: RenderedMessage
    outcome: SendOutcome
    attempts: int


def hand_over(
    journal: HandoverJournal,
    *,
    outcomes: Sequence[Outcome],
    handed: Sequence[RenderedMessage],
    as_of: datetime,
    now: datetime,
) -> None:
    """One committed turn in the hand-over journal: the ``outcomes`` of messages handed over
    earlier, and the ``handed`` messages marked handed over, right before their provider gets
    them. Either may be empty. So the rows handed over without an outcome are at most the
    messages in flight (one per provider slot, ``senders.dispatch``). ``HandoverJournal.fold``
    applies the turns to the ledger."""
    rows = outcome_rows(outcomes, as_of)
    journal.write(outcomes=rows, handed=[(m.idempotency_key, m.channel) for m in handed], now=now)


def outcome_rows(outcomes: Sequence[Outcome], as_of: datetime) -> list[dict[str, object]]:
    """The journal's rows for ``outcomes`` (``HandoverJournal.write`` and ``fold``)."""
    return [_outcome_row(o.message, o.outcome, o.attempts, as_of) for o in outcomes]


def _of_channels(channels: Collection[str] | None, params: dict[str, object]) -> str:
    """SQL condition: the row's channel is one of ``channels`` (None: any), with its parameter."""
    if channels is None:
        return "true"
    params["channels"] = sorted(channels)
    return "list_contains($channels, channel)"


def release(
    con: duckdb.DuckDBPyConnection,
    keys: Sequence[str] | None,
    *,
    reason: str,
    now: datetime,
    channels: Collection[str] | None = None,
) -> int:
    """Intents whose message no provider accepted go back to what they were before: a first
    attempt's row is deleted (its outbox row is pending again), a retry's row is again a
    transient failure, due now, with its attempt not counted. ``keys`` None: every ``sending`` row
    of ``channels`` (None: of every channel) never handed over (after a crash). Returns how many
    rows were released."""
    params: dict[str, object] = {} if keys is None else {"keys": list(keys)}
    where = "status = 'sending' and " + (
        f"attempted_at is null and {_of_channels(channels, params)}"
        if keys is None
        else "list_contains($keys, idempotency_key)"
    )
    with transaction(con):
        deleted = con.execute(
            f"delete from nudge.delivery_ledger where {where} and coalesce(attempts, 0) <= 1 "
            "returning idempotency_key",
            params,
        ).fetchall()
        restored = con.execute(
            f"""update nudge.delivery_ledger
                set status = 'failed', reason = $reason, permanent = false,
                    attempts = attempts - 1, next_attempt_at = as_of, attempted_at = null,
                    completed_at = $now
                where {where}
                returning idempotency_key""",
            {**params, "reason": f"not handed over: {reason}", "now": now},
        ).fetchall()
    return len(deleted) + len(restored)


def reconcile_in_flight(
    con: duckdb.DuckDBPyConnection, *, now: datetime, channels: Collection[str] | None = None
) -> tuple[int, int]:
    """Resolve rows a stopped run left in ``sending`` (of ``channels``; None: of every channel):
    those never handed over are released, those handed over are failed with outcome unknown
    (permanent, never resent). Returns ``(released, unknown)``.

    A dispatch reconciles only its own channels: on a server warehouse another channel's sender
    may be dispatching at the same time, and its ``sending`` rows are its messages in flight."""
    released = release(con, None, reason="the run stopped first", now=now, channels=channels)
    params: dict[str, object] = {"reason": IN_FLIGHT_REASON, "now": now}
    unknown = con.execute(
        f"""update nudge.delivery_ledger
           set status = 'failed', reason = $reason, completed_at = $now, permanent = true,
               next_attempt_at = null
           where status = 'sending' and {_of_channels(channels, params)}
           returning idempotency_key""",
        params,
    ).fetchall()
    return released, len(unknown)


def scrub_erased_people(con: duckdb.DuckDBPyConnection, erased_users: str) -> int:
    """Erase the personal data kept about messages to deleted or suppressed people.

    ``erased_users`` names a table of ``(user_id, erased_through)`` (dbt's
    ``marts.dim_erased_users``). For every ledger row of such a user queued at or before
    ``erased_through``, the address and the provider's reason (which can quote the address) are
    set to null, and so are the trigger-event properties of their outbox rows and the address
    and reason of the provider reports about them (``nudge.delivery_feedback``); the rows
    themselves stay, so that the message is still never sent twice and the counts still add up.
    ``nudge.suppressed_addresses`` is kept: it holds no user id, and forgetting a dead address
    would send to it again. Returns how many ledger rows were scrubbed.
    """
    erased = (
        f"exists (select 1 from {erased_users} d "
        "where d.user_id = {row}.user_id and {row}.as_of <= d.erased_through)"
    )
    with transaction(con):
        scrubbed = con.execute(
            "update nudge.delivery_ledger l set address = null, reason = null "
            "where (l.address is not null or l.reason is not null) and " + erased.format(row="l")
        ).fetchone()
        con.execute(
            "update nudge.outbox o set event_properties = null "
            "where o.event_properties is not null and " + erased.format(row="o")
        )
        con.execute(
            "update nudge.delivery_feedback f set address = null, reason = null "
            "where (f.address is not null or f.reason is not null) and exists ("
            f"select 1 from {erased_users} d where d.user_id = f.user_id "
            "and coalesce(f.occurred_at, f.applied_at) <= d.erased_through)"
        )
    return int(scrubbed[0]) if scrubbed else 0
