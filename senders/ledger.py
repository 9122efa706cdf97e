"""Writes to ``nudge.delivery_ledger``: the record that makes every send happen at most once.

The protocol for one batch: write the intents (status ``sending``) in a committed transaction,
hand the messages whose intent was written to providers, then record the outcomes. The primary key
on ``idempotency_key`` forbids a second row, and dispatch only considers keys not yet in the ledger,
so a key is never handed to a provider twice. Rows a crash left in ``sending`` are reconciled to
``failed`` (outcome unknown), never resent.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

import duckdb
import polars as pl

from senders.providers import RenderedMessage, SendOutcome

INTERRUPTED_REASON = "interrupted: outcome unknown, not resent"

LEDGER_COLUMNS = (
    "idempotency_key",
    "delivery_id",
    "run_id",
    "as_of",
    "user_id",
    "journey",
    "step",
    "channel",
    "template",
    "topic",
    "provider",
    "address",
    "status",
    "reason",
    "provider_message_id",
    "queued_at",
    "attempted_at",
    "completed_at",
)
LEDGER_SCHEMA = {
    "idempotency_key": pl.String,
    "delivery_id": pl.String,
    "run_id": pl.String,
    "as_of": pl.Datetime("us"),
    "user_id": pl.String,
    "journey": pl.String,
    "step": pl.String,
    "channel": pl.String,
    "template": pl.String,
    "topic": pl.String,
    "provider": pl.String,
    "address": pl.String,
    "status": pl.String,
    "reason": pl.String,
    "provider_message_id": pl.String,
    "queued_at": pl.Datetime("us"),
    "attempted_at": pl.Datetime("us"),
    "completed_at": pl.Datetime("us"),
}
_COLUMN_LIST = ", ".join(LEDGER_COLUMNS)


@contextmanager
def _registered(con: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame) -> Iterator[None]:
    con.register(name, frame)
    try:
        yield
    finally:
        con.unregister(name)


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Commit on success, roll back on any error."""
    con.begin()
    try:
        yield
    except BaseException:
        con.rollback()
        raise
    con.commit()


def ledger_rows(
    decisions: pl.DataFrame, *, run_id: str, as_of: datetime, now: datetime
) -> pl.DataFrame:
    """Ledger rows from decided outbox rows (outbox columns plus ``status``, ``reason``,
    ``address`` and optionally ``provider``). ``queued_at`` is the outbox row's ``created_at``;
    a ``sending`` row is attempted ``now``, any other row is complete ``now``."""
    sending = pl.col("status") == "sending"
    frame = decisions.with_columns(
        pl.lit(run_id).alias("run_id"),
        pl.lit(as_of).cast(pl.Datetime("us")).alias("as_of"),
        pl.col("created_at").alias("queued_at"),
        pl.when(sending).then(pl.lit(now)).alias("attempted_at"),
        pl.when(~sending).then(pl.lit(now)).alias("completed_at"),
        pl.lit(None, pl.String).alias("provider_message_id"),
    )
    if "provider" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, pl.String).alias("provider"))
    return frame.select(pl.col(name).cast(dtype) for name, dtype in LEDGER_SCHEMA.items())


def _insert(con: duckdb.DuckDBPyConnection, rows: pl.DataFrame) -> list[tuple[str, str]]:
    """Insert ledger rows, leaving keys already present alone; ``(key, status)`` of rows written."""
    if rows.is_empty():
        return []
    with _registered(con, "_nudge_ledger_rows", rows.select(LEDGER_COLUMNS)):
        return con.execute(
            f"insert or ignore into nudge.delivery_ledger ({_COLUMN_LIST}) "
            f"select {_COLUMN_LIST} from _nudge_ledger_rows returning idempotency_key, status"
        ).fetchall()


def record_decisions(con: duckdb.DuckDBPyConnection, rows: pl.DataFrame) -> int:
    """Bulk insert final rows (skipped, dropped, undeliverable, failed) built by ``ledger_rows``.
    Returns how many were written."""
    return len(_insert(con, rows))


def record_intents(con: duckdb.DuckDBPyConnection, rows: pl.DataFrame) -> set[str]:
    """Write a batch in one committed transaction: ``sending`` rows are intents, other rows (render
    errors of the same batch) are final. Returns the keys whose intent was written: only those may
    be handed to a provider."""
    with transaction(con):
        written = _insert(con, rows)
    return {key for key, status in written if status == "sending"}


def record_outcomes(
    con: duckdb.DuckDBPyConnection,
    outcomes: Sequence[tuple[RenderedMessage, SendOutcome]],
    *,
    completed_at: datetime,
) -> None:
    """Bulk update the ``sending`` rows of a batch with what the providers answered."""
    if not outcomes:
        return
    frame = pl.DataFrame(
        [
            {
                "idempotency_key": m.idempotency_key,
                "status": o.status,
                "reason": o.reason,
                "provider_message_id": o.provider_message_id,
            }
            for m, o in outcomes
        ],
        schema={
            "idempotency_key": pl.String,
            "status": pl.String,
            "reason": pl.String,
            "provider_message_id": pl.String,
        },
    )
    with _registered(con, "_nudge_outcomes", frame), transaction(con):
        con.execute(
            """update nudge.delivery_ledger l
               set status = o.status, reason = o.reason,
                   provider_message_id = o.provider_message_id, completed_at = $completed_at
               from _nudge_outcomes o
               where l.idempotency_key = o.idempotency_key and l.status = 'sending'""",
            {"completed_at": completed_at},
        )


def reconcile_in_flight(con: duckdb.DuckDBPyConnection, *, now: datetime) -> int:
    """Mark rows left in ``sending`` (a crash between intent and outcome) as failed, not resent.
    Returns how many were reconciled."""
    reconciled = con.execute(
        """update nudge.delivery_ledger
           set status = 'failed', reason = $reason, completed_at = $now
           where status = 'sending'
           returning idempotency_key""",
        {"reason": INTERRUPTED_REASON, "now": now},
    ).fetchall()
    return len(reconciled)
