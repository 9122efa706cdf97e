"""Send every pending outbox row at most once: policies, rendering, providers, ledger.

Order of work in one dispatch:

1. reconcile rows a crash left in ``sending`` (failed, never resent);
2. decide every pending row at once in SQL (``senders.policy``): new outbox rows and transient
   failures whose retry is due; write the final decisions (skipped, dropped, undeliverable, no
   provider) in one insert; held rows stay pending;
3. per batch: render each message (the only per-row Python work besides the send itself), write
   the batch's intents in one committed transaction, hand each message whose intent was written to
   its channel's provider (a transient failure is tried again a couple of times right away, with a
   short jittered pause), then record the batch's outcomes in one update; a failure still
   transient is scheduled for a later dispatch (``senders.retry``);
4. add this dispatch's counts per journey step and channel to ``nudge.run_counts``.

Providers are closed at the end (they reconnect lazily if the caller reuses them).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import polars as pl

from nudge.dsl.models import Content
from senders import ledger
from senders.policy import evaluate_policies
from senders.providers import Provider, RenderedMessage, SendOutcome
from senders.retry import backoff_delay
from senders.run_counts import StepCounts, record_run_counts
from senders.templates import RenderContext, RenderError, TemplateRenderer
from senders.unsubscribe import unsubscribe_url

FINAL_DECISIONS = ("skipped", "dropped", "undeliverable")
SEND_RETRIES = 2
RETRY_PAUSE = timedelta(milliseconds=200)
# A provider asking for a longer pause than this is left to a later dispatch.
MAX_RETRY_PAUSE = timedelta(seconds=5)


@dataclass
class DispatchSummary:
    """What one dispatch did: messages per ``(channel, status)`` (``held`` included), and how
    many in-flight rows from an earlier crash were reconciled."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    reconciled: int = 0
    steps: StepCounts = field(default_factory=StepCounts)

    def total(self, status: str | None = None, channel: str | None = None) -> int:
        return sum(
            n
            for (c, s), n in self.counts.items()
            if (status is None or s == status) and (channel is None or c == channel)
        )

    def metadata(self) -> dict[str, int]:
        """Flat counts for run metadata: ``{"email.sent": 2, ..., "reconciled": 0}``."""
        counts = {f"{c}.{s}": n for (c, s), n in sorted(self.counts.items())}
        return {**counts, "reconciled": self.reconciled}

    def by_channel(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for (channel, status), n in sorted(self.counts.items()):
            out.setdefault(channel, {})[status] = n
        return out


def _utc_naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _count(summary: DispatchSummary, frame: pl.DataFrame) -> None:
    """Count rows decided without a provider call, per channel and per journey step."""
    grouped = frame.group_by("journey", "step", "channel", "status").len()
    for journey, step, channel, status, n in grouped.rows():
        summary.counts[(channel, status)] += n
        summary.steps.add_decision(journey, step, channel, status, n)


def _render(renderer: TemplateRenderer, row: Mapping[str, Any]) -> RenderedMessage:
    template = renderer.template(row["template"])
    if template.channel != row["channel"]:
        raise RenderError(
            template.name,
            "channel",
            f"template is for channel {template.channel!r}, the step sends {row['channel']!r}",
        )
    unsubscribe = unsubscribe_url(row["user_id"], row["topic"])
    context = RenderContext(
        user_id=row["user_id"],
        traits=json.loads(row["traits"]) if row["traits"] else {},
        event=json.loads(row["event_properties"]) if row["event_properties"] else None,
        journey=row["journey"],
        step=row["step"],
        delivery_id=row["delivery_id"],
        unsubscribe_url=unsubscribe,
    )
    content = renderer.render(template.name, context)
    content["unsubscribe_url"] = unsubscribe
    return RenderedMessage(
        delivery_id=row["delivery_id"],
        idempotency_key=row["idempotency_key"],
        user_id=row["user_id"],
        channel=row["channel"],
        address=row["address"],
        journey=row["journey"],
        step=row["step"],
        template=row["template"],
        content=content,
        topic=row["topic"],
    )


def _send_once(provider: Provider, message: RenderedMessage) -> SendOutcome:
    try:
        return provider.send(message)
    except Exception as err:  # a provider bug must not stop the batch; the row records it
        return SendOutcome.failed(f"provider error: {type(err).__name__}: {err}", permanent=False)


def _send(
    provider: Provider, message: RenderedMessage, *, retries: int, pause: timedelta
) -> SendOutcome:
    """Hand ``message`` over; on a transient failure try again up to ``retries`` times after a
    jittered pause (at least the provider's Retry-After, unless that is too long to wait here)."""
    outcome = _send_once(provider, message)
    for attempt in range(1, retries + 1):
        if outcome.status == "sent" or outcome.permanent:
            break
        wait = backoff_delay(
            message.idempotency_key, attempt, base=pause, cap=pause * 8,
            retry_after=outcome.retry_after,
        )  # fmt: skip
        if wait > MAX_RETRY_PAUSE:
            break
        time.sleep(wait.total_seconds())
        outcome = _send_once(provider, message)
    return outcome


def dispatch_pending(
    con: duckdb.DuckDBPyConnection,
    *,
    as_of: datetime,
    run_id: str,
    content: Content,
    providers: Mapping[str, Provider],
    channels: Collection[str] | None = None,
    batch_size: int = 500,
    send_retries: int = SEND_RETRIES,
    retry_pause: timedelta = RETRY_PAUSE,
) -> DispatchSummary:
    """Send the outbox rows not yet in the ledger (and the transient failures due for a retry),
    through ``providers`` (channel -> provider).

    ``channels`` limits the dispatch to those channels (rows of others stay pending); by default
    every pending row is decided, and a channel without a provider is recorded as failed.
    ``send_retries`` and ``retry_pause`` govern the immediate retries of a transient failure."""
    as_of = _utc_naive(as_of)
    summary = DispatchSummary(reconciled=ledger.reconcile_in_flight(con, now=_now()))
    decided = evaluate_policies(con, as_of=as_of, content=content, channels=channels)
    provider_names = pl.DataFrame(
        {"channel": list(providers), "provider": [p.name for p in providers.values()]},
        schema={"channel": pl.String, "provider": pl.String},
    )
    decided = decided.join(provider_names, on="channel", how="left").with_columns(
        pl.when((pl.col("status") == "send") & pl.col("provider").is_null())
        .then(pl.lit("failed"))
        .otherwise(pl.col("status"))
        .alias("status"),
        pl.when((pl.col("status") == "send") & pl.col("provider").is_null())
        .then(pl.format("no provider configured for channel {}", pl.col("channel")))
        .otherwise(pl.col("reason"))
        .alias("reason"),
    )
    final = decided.filter(pl.col("status").is_in([*FINAL_DECISIONS, "failed"]))
    ledger.record_decisions(con, ledger.ledger_rows(final, run_id=run_id, as_of=as_of, now=_now()))
    summary.steps.add(decided, "planned")
    _count(summary, decided.filter(pl.col("status") != "send"))

    renderer = TemplateRenderer(content.templates)
    to_send = decided.filter(pl.col("status") == "send")
    sender = _Sender(providers, send_retries, retry_pause)
    try:
        for batch in to_send.iter_slices(batch_size):
            _dispatch_batch(con, batch, renderer, sender, run_id, as_of, summary)
    finally:
        for provider in providers.values():
            provider.close()
        record_run_counts(con, summary.steps, run_id=run_id, as_of=as_of)
    return summary


@dataclass(frozen=True)
class _Sender:
    providers: Mapping[str, Provider]
    retries: int
    pause: timedelta

    def send(self, message: RenderedMessage) -> SendOutcome:
        provider = self.providers[message.channel]
        return _send(provider, message, retries=self.retries, pause=self.pause)


def _dispatch_batch(
    con: duckdb.DuckDBPyConnection,
    batch: pl.DataFrame,
    renderer: TemplateRenderer,
    sender: _Sender,
    run_id: str,
    as_of: datetime,
    summary: DispatchSummary,
) -> None:
    messages: list[RenderedMessage] = []
    errors: dict[str, str] = {}
    for row in batch.iter_rows(named=True):
        try:
            messages.append(_render(renderer, row))
        except RenderError as err:
            errors[row["idempotency_key"]] = str(err)
    failed = pl.col("idempotency_key").is_in(list(errors))
    rows = batch.with_columns(
        pl.when(failed).then(pl.lit("failed")).otherwise(pl.lit("sending")).alias("status"),
        pl.col("idempotency_key")
        .replace_strict(errors, default=None, return_dtype=pl.String)
        .alias("reason"),
    )
    written = ledger.record_intents(
        con, ledger.ledger_rows(rows, run_id=run_id, as_of=as_of, now=_now())
    )
    outcomes = [(m, sender.send(m)) for m in messages if m.idempotency_key in written]
    ledger.record_outcomes(con, outcomes, attempts=written, as_of=as_of, completed_at=_now())
    for message, outcome in outcomes:
        summary.counts[(message.channel, outcome.status)] += 1
        summary.steps.add_attempt(message.journey, message.step, message.channel, outcome.status)
    if errors:
        _count(summary, rows.filter(failed))
