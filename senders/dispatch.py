"""Send every pending outbox row at most once: policies, rendering, providers, ledger.

Order of work in one dispatch (the ledger protocol is in ``senders.ledger`` and docs/delivery.md):

1. reconcile rows a stopped run left in ``sending``: never handed over -> pending again; handed
   over -> failed, outcome unknown, never resent;
2. decide every pending row at once in SQL (``senders.policy``): new outbox rows and transient
   failures whose retry is due; write the final decisions (skipped, dropped, undeliverable, no
   provider) in one insert; held rows stay pending;
3. per batch (the first no larger than the largest provider window, so that sending starts
   early): render each message (the only per-row Python work besides the send itself; on a
   thread of its own, the next batch while this one is handed over), write
   the batch's intents in one committed transaction, then each channel's messages are handed
   over: one committed turn in the hand-over journal (``senders.handover_journal``) records the
   outcomes come back and marks the next messages handed over, right before their provider gets
   them, and the journal is folded into the ledger at the end of a batch every
   ``FOLD_INTERVAL_SECONDS`` and at the end of the dispatch; a provider with ``concurrency`` N holds
   up to N messages in flight on its threads, any other one at a time (a transient failure is tried again a couple of times right away, with a short jittered
   pause); a failure still transient is scheduled for a later dispatch (``senders.retry``);
   a channel's messages in flight at the end of a batch stay in flight while the next batch's
   take the free slots (``_Window``); the end of the dispatch waits for every answer;
4. add this dispatch's counts per journey step and channel to ``nudge.run_counts``.

A channel stops getting messages when its provider's circuit breaker opens (``senders.breaker``),
when the run's send time budget is used up, or when SIGTERM/SIGINT arrives (after the message in
hand; the signal is raised again afterwards): its remaining messages stay pending for the next
run and ``DispatchSummary.stopped`` says why. Providers are closed at the end (they reconnect
lazily if the caller reuses them).
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterator, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import duckdb
import polars as pl

from nudge.core.clock import to_utc_naive, utc_now
from nudge.core.dsl.spec import Content
from nudge.core.warehouse.locks import CROSS_CHANNEL_CAPS, exclusive
from senders import ledger
from senders.breaker import CircuitBreaker
from senders.handover_journal import HandoverJournal, journal_path
from senders.interrupts import Interrupts, deferred_interrupts
from senders.policy import evaluate_policies
from senders.providers import Provider, RenderedMessage, SendOutcome
from senders.retry import backoff_delay
from senders.run_counts import StepCounts, record_run_counts
from senders.settings import DispatchSettings
from senders.templates import RenderContext, RenderError, TemplateRenderer
from senders.unsubscribe import unsubscribe_url

FINAL_DECISIONS = ("skipped", "dropped", "undeliverable")
# A provider asking for a longer pause than this is left to a later dispatch.
MAX_RETRY_PAUSE = timedelta(seconds=5)
# The hand-over journal is folded into the ledger at the end of a batch once this many seconds
# have passed since the last fold, and at the end of the dispatch: a fold is a DuckDB commit
# during which no turn is taken and the free slots wait (tens of milliseconds), so folding
# after every batch cost more than the ledger gains by it; it stays this fresh.
FOLD_INTERVAL_SECONDS = 5.0
# Messages a channel did not get because it was stopped (breaker, budget, signal): not in the
# ledger, or back to their transient failure; the next run sends them.
LEFT_PENDING = "pending"


@dataclass
class DispatchSummary:
    """What one dispatch did: messages per ``(channel, status)`` (``held`` and ``pending``
    included), rows an earlier stopped run left in flight (``reconciled``: outcome unknown;
    ``released``: never handed over, pending again), and why channels were stopped early."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    reconciled: int = 0
    released: int = 0
    steps: StepCounts = field(default_factory=StepCounts)
    stopped: dict[str, str] = field(default_factory=dict)  # channel -> why

    def total(self, status: str | None = None, channel: str | None = None) -> int:
        return sum(
            n
            for (c, s), n in self.counts.items()
            if (status is None or s == status) and (channel is None or c == channel)
        )

    def notes(self) -> list[str]:
        """One sentence per stopped channel: why, and how many messages wait for the next run."""
        return [
            f"{why}; {self.total(LEFT_PENDING, channel):,} {channel} messages left pending "
            "for the next run"
            for channel, why in sorted(self.stopped.items())
        ]

    def metadata(self) -> dict[str, int | str]:
        """Flat counts for run metadata: ``{"email.sent": 2, ..., "reconciled": 0}``, plus
        ``stopped`` when a channel was stopped early."""
        counts: dict[str, int | str] = {f"{c}.{s}": n for (c, s), n in sorted(self.counts.items())}
        counts.update(reconciled=self.reconciled, released=self.released)
        if self.stopped:
            counts["stopped"] = "\n".join(self.notes())
        return counts

    def by_channel(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for (channel, status), n in sorted(self.counts.items()):
            out.setdefault(channel, {})[status] = n
        return out


def _count(summary: DispatchSummary, frame: pl.DataFrame) -> None:
    """Count rows decided without a provider call, per channel and per journey step."""
    grouped = frame.group_by("journey", "step", "channel", "status").len()
    for journey, step, channel, status, n in grouped.rows():
        summary.counts[(channel, status)] += n
        summary.steps.add_decision(journey, step, channel, status, n)


def render_message(renderer: TemplateRenderer, row: Mapping[str, Any]) -> RenderedMessage:
    """One outbox-shaped row (its template, user traits and event as JSON text, address) rendered
    into the message a provider gets: the one render path of journey sends, the transactional API,
    previews and test sends."""
    template = renderer.template(row["template"])
    if template.channel != row["channel"]:
        raise RenderError(
            template.name,
            "channel",
            f"template is for channel {template.channel!r}, the step sends {row['channel']!r}",
        )
    unsubscribe = unsubscribe_url(row["user_id"], row["topic"], row["channel"])
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


def send_once(provider: Provider, message: RenderedMessage) -> SendOutcome:
    """``provider.send``; an exception it raises (a provider bug must not stop the batch) is an
    unknown outcome, never retried: it may come after the provider accepted the message."""
    try:
        return provider.send(message)
    except Exception as err:
        return SendOutcome.unknown(f"provider error: {type(err).__name__}: {err}")


def dispatch_pending(
    con: duckdb.DuckDBPyConnection,
    *,
    as_of: datetime,
    run_id: str,
    content: Content,
    providers: Mapping[str, Provider],
    channels: Collection[str] | None = None,
    batch_size: int = 500,
    settings: DispatchSettings | None = None,
    paused_journeys: Callable[[], Collection[str]] | None = None,
) -> DispatchSummary:
    """Send the outbox rows not yet in the ledger (and the transient failures due for a retry),
    through ``providers`` (channel -> provider).

    ``channels`` limits the dispatch to those channels (rows of others stay pending); by default
    every pending row is decided, and a channel without a provider is recorded as failed.
    ``settings`` (default: ``DispatchSettings.from_env()``) bound the retries and the run.
    ``paused_journeys`` is asked before each hand-over which journeys were paused while this
    dispatch runs (``nudge journeys pause`` during a send): their messages stay pending."""
    caps_guard = (
        exclusive(con, CROSS_CHANNEL_CAPS)
        if channels is not None and shares_caps_across_channels(content)
        else nullcontext()
    )
    with caps_guard:
        return _dispatch(
            con, as_of=to_utc_naive(as_of), run_id=run_id, content=content, providers=providers,
            channels=channels, batch_size=batch_size,
            settings=settings or DispatchSettings.from_env(), paused_journeys=paused_journeys,
        )  # fmt: skip


def shares_caps_across_channels(content: Content) -> bool:
    """Whether a frequency cap counts the sends of every channel (``channel: any``): the
    dispatches of single channels must then decide one after another, each seeing what the
    others sent, or two of them could each send the one message the cap has left."""
    return any(cap.channel == "any" for cap in content.policies.frequency_caps)


def _dispatch(
    con: duckdb.DuckDBPyConnection,
    *,
    as_of: datetime,
    run_id: str,
    content: Content,
    providers: Mapping[str, Provider],
    channels: Collection[str] | None,
    batch_size: int,
    settings: DispatchSettings,
    paused_journeys: Callable[[], Collection[str]] | None,
) -> DispatchSummary:
    # Only this dispatch's channels: another channel's dispatch may run at the same time (a
    # server warehouse), and its rows in the journal and in ``sending`` are its own in flight.
    def decide() -> tuple[int, int, pl.DataFrame]:
        released, unknown = ledger.reconcile_in_flight(con, now=utc_now(), channels=channels)
        decided = evaluate_policies(con, as_of=as_of, content=content, channels=channels)
        return released, unknown, decided

    journal, (released, unknown, decided) = _open_journal(con, channels, decide)
    summary = DispatchSummary(reconciled=unknown, released=released)
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
    ledger.record_decisions(
        con, ledger.ledger_rows(final, run_id=run_id, as_of=as_of, now=utc_now())
    )
    summary.steps.add(decided, "planned")
    _count(summary, decided.filter(pl.col("status") != "send"))

    renderer = TemplateRenderer(content.templates, content.layouts)
    to_send = decided.filter(pl.col("status") == "send")
    with deferred_interrupts() as interrupts:
        sending = _Sending(providers, settings, interrupts, paused_journeys or frozenset, journal)
        windows: dict[str, _Window] = {}
        preparing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nudge-prepare")
        try:
            first = max((sending.concurrency(c) for c in providers), default=1)
            batches = _batches(to_send, batch_size, first)

            def prepare_next() -> Future[_Prepared] | None:
                batch = next(batches, None)
                if batch is None:
                    return None
                return preparing.submit(_prepare, con, renderer, batch, sending, run_id, as_of)

            ahead = prepare_next()
            while ahead is not None:
                prepared = ahead.result()
                ahead = prepare_next()
                _dispatch_batch(con, prepared, sending, windows, as_of, summary)
            _hand_over(con, [], {}, sending, windows, as_of, summary, drain=True)
        finally:
            preparing.shutdown(cancel_futures=True)
            for window in windows.values():
                # A drained window's threads are idle and end on their own; joining a hundred
                # of them took tens of milliseconds at the end of every dispatch.
                window.pool.shutdown(wait=bool(window.in_flight))
            for provider in providers.values():
                provider.close()
            journal.close()
            record_run_counts(con, summary.steps, run_id=run_id, as_of=as_of)
    return summary


def _open_journal(
    con: duckdb.DuckDBPyConnection,
    channels: Collection[str] | None,
    decide: Callable[[], tuple[int, int, pl.DataFrame]],
) -> tuple[HandoverJournal, tuple[int, int, pl.DataFrame]]:
    """The dispatch's hand-over journal, with what ``decide`` returns (reconciling the ledger and
    deciding the policies). A journal on disk is folded first: what a stopped run handed over
    must reach the ledger before it is reconciled. A journal not yet on disk holds nothing to
    fold, so it is created on another thread while ``decide`` runs (creating the file syncs it
    to disk several times)."""
    path = journal_path(con)
    if path.exists():
        journal = HandoverJournal(path, channels)
        journal.fold(con)
        return journal, decide()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="nudge-journal") as side:
        created = side.submit(HandoverJournal.create, path)
        decided = decide()
        created.result()
    return HandoverJournal(path, channels), decided


class _Sending:
    """Hands messages to providers for one dispatch, and knows when a channel must stop.
    ``journal`` is None outside a dispatch (``send_now``: nothing is handed over in turns)."""

    def __init__(
        self,
        providers: Mapping[str, Provider],
        settings: DispatchSettings,
        interrupts: Interrupts,
        paused_journeys: Callable[[], Collection[str]],
        journal: HandoverJournal | None,
    ):
        self.providers = providers
        self.journal = journal
        self.paused_journeys = paused_journeys
        self.settings = settings
        self.interrupts = interrupts
        self.breakers = {
            channel: CircuitBreaker(getattr(p, "label", p.name), settings.breaker_failures)
            for channel, p in providers.items()
        }
        self._breaker_lock = threading.Lock()
        budget = settings.time_budget
        self.deadline = None if budget is None else time.monotonic() + budget.total_seconds()
        self.folded_at = time.monotonic()
        # The warehouse connection is shared by the thread handing messages over (folds,
        # releases) and the one preparing the next batch (intents): one statement at a time.
        self.warehouse_lock = threading.Lock()

    def fold(
        self,
        con: duckdb.DuckDBPyConnection,
        keep: list[str],
        *,
        now: bool,
        outcomes: list[dict[str, object]] | None = None,
    ) -> None:
        """Fold the journal into the ledger (``now``, or when ``FOLD_INTERVAL_SECONDS`` passed),
        but for the rows of ``keep`` (messages still in flight), with ``outcomes`` that no turn
        wrote (``HandoverJournal.fold``)."""
        if now or time.monotonic() - self.folded_at >= FOLD_INTERVAL_SECONDS:
            with self.warehouse_lock:
                self.journal.fold(con, keep=keep, outcomes=outcomes or (), now=utc_now())
            self.folded_at = time.monotonic()

    def concurrency(self, channel: str) -> int:
        """Messages the channel's provider takes in flight at once (1 unless it says more)."""
        return max(1, int(getattr(self.providers[channel], "concurrency", 1)))

    def _record(self, breaker: CircuitBreaker, outcome: SendOutcome) -> None:
        with self._breaker_lock:  # providers with concurrency record from several threads
            breaker.record(outcome)

    def hold_reason(self, message: RenderedMessage, paused: Collection[str]) -> str | None:
        """Why ``message`` is not handed over now (it stays pending), or None. ``paused``: the
        journeys paused meanwhile, asked once per turn (``paused_journeys``)."""
        if message.journey in paused:
            return f"journey {message.journey} was paused during the send"
        return self.stop_reason(message.channel)

    def stop_reason(self, channel: str) -> str | None:
        """Why ``channel`` gets no more messages in this dispatch, or None."""
        if self.interrupts.requested:
            return f"stopped by signal {self.interrupts.signum}"
        if self.deadline is not None and time.monotonic() > self.deadline:
            return (
                f"send time budget of {self.settings.time_budget} used up (NUDGE_SEND_TIME_BUDGET)"
            )
        return self.breakers[channel].reason

    def send(self, message: RenderedMessage) -> SendOutcome:
        """Hand ``message`` over; on a transient failure try again up to ``send_retries`` times
        after a jittered pause (at least the provider's Retry-After, unless that is too long to
        wait here), unless the provider's breaker opened."""
        provider, breaker = self.providers[message.channel], self.breakers[message.channel]
        pause = self.settings.retry_pause
        outcome = send_once(provider, message)
        self._record(breaker, outcome)
        for attempt in range(1, self.settings.send_retries + 1):
            if outcome.status == "sent" or outcome.permanent or breaker.is_open:
                break
            wait = backoff_delay(
                message.idempotency_key, attempt, base=pause, cap=pause * 8,
                retry_after=outcome.retry_after,
            )  # fmt: skip
            if wait > MAX_RETRY_PAUSE:
                break
            time.sleep(wait.total_seconds())
            outcome = send_once(provider, message)
            self._record(breaker, outcome)
        return outcome

    def opened_by(self, message: RenderedMessage, outcome: SendOutcome) -> bool:
        """The breaker opened on this message's failure, which was safe (nothing delivered):
        the message goes back to pending with the rest of its channel."""
        return (
            outcome.fault is not None
            and not outcome.ambiguous
            and self.breakers[message.channel].is_open
        )


def send_now(
    provider: Provider, message: RenderedMessage, settings: DispatchSettings
) -> SendOutcome:
    """Hand one message over outside a dispatch (the transactional API), with the dispatch's
    immediate retries of a transient failure."""
    sending = _Sending({message.channel: provider}, settings, Interrupts(), frozenset, None)
    return sending.send(message)


def _leave_pending(summary: DispatchSummary, channel: str, n: int, why: str) -> None:
    summary.counts[(channel, LEFT_PENDING)] += n
    summary.stopped.setdefault(channel, why)


def _render(
    renderer: TemplateRenderer, batch: pl.DataFrame
) -> tuple[list[RenderedMessage], dict[str, str]]:
    """The batch's messages rendered, and the render errors by idempotency key."""
    messages: list[RenderedMessage] = []
    errors: dict[str, str] = {}
    for row in batch.iter_rows(named=True):
        try:
            messages.append(render_message(renderer, row))
        except RenderError as err:
            errors[row["idempotency_key"]] = str(err)
    return messages, errors


def _batches(frame: pl.DataFrame, size: int, first: int) -> Iterator[pl.DataFrame]:
    """``frame`` in slices of ``size`` rows, the first no longer than ``first`` (the largest
    provider window): the first messages leave once that many are rendered and their intents
    written, not a whole batch; the slices after it are prepared while it is handed over."""
    start = min(size, first)
    yield from frame.slice(0, start).iter_slices(size)
    yield from frame.slice(start).iter_slices(size)


@dataclass(frozen=True)
class _Prepared:
    """A batch ready to hand over: its messages whose intent is written (with their attempt
    numbers), its render errors (recorded as failed), and its rows of channels already stopped
    (not written: pending, with why)."""

    messages: list[RenderedMessage]
    attempts: dict[str, int]
    render_errors: pl.DataFrame
    stopped: list[tuple[str, int, str]]


def _prepare(
    con: duckdb.DuckDBPyConnection,
    renderer: TemplateRenderer,
    batch: pl.DataFrame,
    sending: _Sending,
    run_id: str,
    as_of: datetime,
) -> _Prepared:
    """Render a batch and write the intents of its messages of channels still running, on the
    dispatch's one preparing thread while the batch before it is handed over, so that the free
    slots do not wait for a batch's rendering and its intents' commit (one thread: an environment
    renders one template at a time). The intents are committed before any of their messages can
    leave, as always; a channel stopped after they were written gets its messages released
    (``hold_reason``). ``con`` is shared with the handing-over thread under
    ``sending.warehouse_lock``."""
    stopped = {c: why for c in batch["channel"].unique() if (why := sending.stop_reason(c))}
    stopped_counts = [
        (channel, n, stopped[channel])
        for channel, n in batch.filter(pl.col("channel").is_in(list(stopped)))["channel"]
        .value_counts(name="n")
        .rows()
    ]
    batch = batch.filter(~pl.col("channel").is_in(list(stopped)))
    messages, errors = _render(renderer, batch)
    failed = pl.col("idempotency_key").is_in(list(errors))
    rows = batch.with_columns(
        pl.when(failed).then(pl.lit("failed")).otherwise(pl.lit("sending")).alias("status"),
        pl.col("idempotency_key")
        .replace_strict(errors, default=None, return_dtype=pl.String)
        .alias("reason"),
    )
    written: dict[str, int] = {}
    if not rows.is_empty():
        with sending.warehouse_lock:
            written = ledger.record_intents(
                con, ledger.ledger_rows(rows, run_id=run_id, as_of=as_of, now=utc_now())
            )
    return _Prepared(
        [m for m in messages if m.idempotency_key in written],
        written,
        rows.filter(failed),
        stopped_counts,
    )


def _dispatch_batch(
    con: duckdb.DuckDBPyConnection,
    prepared: _Prepared,
    sending: _Sending,
    windows: dict[str, _Window],
    as_of: datetime,
    summary: DispatchSummary,
) -> None:
    """Count what the preparation decided (stopped channels' rows pending, render errors
    failed) and hand the batch's messages over."""
    for channel, n, why in prepared.stopped:
        _leave_pending(summary, channel, n, why)
    if not prepared.render_errors.is_empty():
        _count(summary, prepared.render_errors)
    if prepared.messages:
        _hand_over(con, prepared.messages, prepared.attempts, sending, windows, as_of, summary,
                   drain=False)  # fmt: skip


class _Window:
    """One channel's messages in flight, kept across the dispatch's batches: the next batch's
    messages take the slots as the last batch's answers come back, so the provider's slots do not
    drain at the end of every batch. ``outcomes`` came back and are not yet in the journal; with
    ``in_flight`` they are never more than ``size``. ``answered`` receives each future as it
    completes (a done-callback): waiting on it costs the same whatever the window's size, where
    ``concurrent.futures.wait`` locks and unlocks every future in flight on each call."""

    def __init__(self, size: int):
        self.size = size
        self.pool = _executor(size)
        self.in_flight: dict[Future[SendOutcome], tuple[RenderedMessage, int]] = {}
        self.outcomes: list[ledger.Outcome] = []
        self.answered: queue.SimpleQueue[Future[SendOutcome]] = queue.SimpleQueue()

    def submit(self, sending: _Sending, message: RenderedMessage, attempt: int) -> None:
        future = self.pool.submit(sending.send, message)
        self.in_flight[future] = (message, attempt)
        future.add_done_callback(self.answered.put)

    def answers(self) -> list[Future[SendOutcome]]:
        """The futures answered since the last call, waiting for at least one."""
        done = [self.answered.get()]
        while True:
            try:
                done.append(self.answered.get_nowait())
            except queue.Empty:
                return done


def _hand_over(
    con: duckdb.DuckDBPyConnection,
    messages: list[RenderedMessage],
    attempts: Mapping[str, int],
    sending: _Sending,
    windows: dict[str, _Window],
    as_of: datetime,
    summary: DispatchSummary,
    *,
    drain: bool,
) -> None:
    """Hand the batch's messages over, one channel after the other, each channel's provider
    holding up to its ``concurrency`` messages in flight; messages of a channel that was
    stopped, or of a journey paused, meanwhile are released (pending again). Without ``drain``
    the last messages are left in flight for the next batch's turns; with it every window is
    emptied (the end of the dispatch) and the journal folded into the ledger; without it, the
    journal is folded when ``FOLD_INTERVAL_SECONDS`` have passed. A fold keeps the rows of
    messages still in flight in the journal for their outcomes. The last window drained leaves
    its last outcomes to that last fold rather than to one more turn before it."""
    if drain:  # nothing left to hand over: fold what was answered while the last answers come
        sending.fold(con, _flying(windows), now=True)
    unsent: list[tuple[RenderedMessage, str]] = []
    by_channel: dict[str, list[RenderedMessage]] = {channel: [] for channel in windows}
    for message in messages:
        by_channel.setdefault(message.channel, []).append(message)
    for index, (channel, channel_messages) in enumerate(by_channel.items()):
        if channel not in windows:
            windows[channel] = _Window(sending.concurrency(channel))
        _hand_over_window(windows[channel], channel_messages, attempts, sending, as_of, summary,
                          unsent, drain=drain,
                          last=drain and index == len(by_channel) - 1)  # fmt: skip
    last_outcomes = [o for window in windows.values() for o in window.outcomes] if drain else []
    sending.fold(con, _flying(windows), now=drain,
                 outcomes=ledger.outcome_rows(last_outcomes, as_of))  # fmt: skip
    if drain:
        for window in windows.values():
            window.outcomes = []
    if unsent:
        with sending.warehouse_lock:
            ledger.release(
                con, [m.idempotency_key for m, _ in unsent], reason=unsent[0][1], now=utc_now()
            )
        for message, why in unsent:
            _leave_pending(summary, message.channel, 1, why)


def _flying(windows: Mapping[str, _Window]) -> list[str]:
    return [m.idempotency_key for w in windows.values() for m, _ in w.in_flight.values()]


def _hand_over_window(
    window: _Window,
    messages: list[RenderedMessage],
    attempts: Mapping[str, int],
    sending: _Sending,
    as_of: datetime,
    summary: DispatchSummary,
    unsent: list[tuple[RenderedMessage, str]],
    *,
    drain: bool,
    last: bool = False,
) -> None:
    """Keep up to ``window.size`` messages in flight until ``messages`` are all handed over
    (and, with ``drain``, answered). Each turn is one committed transaction that records the
    outcomes come back since the last turn and marks the messages that take the free slots
    handed over; then those go to the provider's threads. So a crash leaves at most
    ``window.size`` messages with an unknown outcome. ``last`` (draining the dispatch's last
    window): once every answer is in, the outcomes not yet journaled stay in
    ``window.outcomes`` for the fold that follows, which writes them to the ledger."""
    queue = deque(messages)
    in_flight = window.in_flight
    while True:
        if last and not queue and not in_flight:
            return
        starting: list[RenderedMessage] = []
        paused = sending.paused_journeys() if queue else ()
        while queue and len(in_flight) + len(starting) < window.size:
            message = queue.popleft()
            if why := sending.hold_reason(message, paused):
                unsent.append((message, why))
            else:
                starting.append(message)
        ledger.hand_over(
            sending.journal, outcomes=window.outcomes, handed=starting, as_of=as_of, now=utc_now()
        )
        window.outcomes = []
        for message in starting:
            window.submit(sending, message, attempts[message.idempotency_key])
        if not queue and not (drain and in_flight):
            return
        if not in_flight:
            continue
        for future in window.answers():
            message, attempt = in_flight.pop(future)
            outcome = future.result()
            if sending.opened_by(message, outcome):
                unsent.append((message, sending.breakers[message.channel].reason or ""))
                continue
            window.outcomes.append(ledger.Outcome(message, outcome, attempt))
            summary.counts[(message.channel, outcome.status)] += 1
            summary.steps.add_attempt(message.journey, message.step, message.channel,
                                      outcome.status)  # fmt: skip


class _InlineExecutor(Executor):
    """Runs each submitted call at once in the calling thread: a provider that takes one
    message at a time (SMTP, capture) needs no thread."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def _executor(window: int) -> Executor:
    if window == 1:
        return _InlineExecutor()
    return ThreadPoolExecutor(max_workers=window, thread_name_prefix="nudge-send")
