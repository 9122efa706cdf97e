"""Transient failures are retried on later dispatches (same ledger row, same key) with a
deterministic jittered backoff, honouring Retry-After, until sent or permanent."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import duckdb
import pytest

from nudge.core.dsl.spec import Content, Origin, Template
from nudge.devtools.smtp_sink import SmtpSink, count_messages
from senders.dispatch import dispatch_pending
from senders.email import SmtpEmailProvider, SmtpSettings
from senders.ledger import IN_FLIGHT_REASON
from senders.providers import Provider, RenderedMessage, SendOutcome
from senders.retry import MAX_ATTEMPTS, backoff_delay, jitter_fraction, parse_retry_after
from senders.settings import DispatchSettings

T0 = datetime(2026, 1, 1, 12, 0, 0)
KEY = "k-ada"
CONTENT = Content(
    templates=(Template("welcome_email", "email", Origin("t.yml", "templates"), {"subject": "Hi"}),)
)
FAST = timedelta(milliseconds=5)


@pytest.fixture
def con(sender_warehouse: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    connection = sender_warehouse
    connection.execute(
        "insert into marts.dim_users values ('ada', ?, 'ada@example.com', null, null, false)",
        [json.dumps({"email": "ada@example.com"})],
    )
    connection.execute(
        """insert into nudge.outbox (idempotency_key, delivery_id, run_id, as_of, entry_id, journey,
               step, user_id, channel, template, transactional, holdout, created_at)
           values (?, 'd-ada', 'r0', ?, 'e-ada', 'onboarding', 'welcome', 'ada', 'email',
                   'welcome_email', false, false, ?)""",
        [KEY, T0, T0],
    )
    return connection


def ledger_row(con: duckdb.DuckDBPyConnection) -> dict[str, object]:
    cursor = con.execute(
        """select status, reason, permanent, attempts, next_attempt_at, run_id, delivery_id
           from nudge.delivery_ledger where idempotency_key = ?""",
        [KEY],
    )
    names = [d[0] for d in cursor.description]
    return dict(zip(names, cursor.fetchone(), strict=True))


def dispatch(con, provider: Provider, as_of: datetime, run_id: str = "run"):
    return dispatch_pending(
        con,
        as_of=as_of,
        run_id=run_id,
        content=CONTENT,
        providers={"email": provider},
        settings=DispatchSettings(retry_pause=FAST),
    )


def smtp(sink: SmtpSink) -> SmtpEmailProvider:
    return SmtpEmailProvider(SmtpSettings(host=sink.host, port=sink.port, timeout=5))


def test_smtp_down_leaves_the_message_pending_then_sends_it_once(con, tmp_path):
    sink = SmtpSink("127.0.0.1", 0, tmp_path / "mail")  # not started: connections are refused

    first = dispatch(con, smtp(sink), T0, "run-1")

    # three refused connections in a row open the breaker: the message was not delivered, so it
    # is left pending (no ledger row), not failed
    assert (first.total("failed"), first.total("pending")) == (0, 1)
    assert "connections failed in a row" in first.stopped["email"]
    assert con.execute("select count(*) from nudge.delivery_ledger").fetchone() == (0,)

    sink.start()
    try:
        retried = dispatch(con, smtp(sink), T0, "run-2")
        assert retried.total("sent") == 1
        again = dispatch(con, smtp(sink), T0 + timedelta(days=1), "run-3")
        assert again.total() == 0
    finally:
        sink.stop()
    assert count_messages(sink.maildir) == 1
    row = ledger_row(con)
    assert (row["status"], row["attempts"], row["run_id"], row["delivery_id"]) == (
        "sent", 1, "run-2", "d-ada",
    )  # fmt: skip
    assert row["next_attempt_at"] is None


class FailingProvider:
    """Answers every send with a transient failure (optionally with a Retry-After)."""

    name = "failing"
    channel = "email"

    def __init__(self, retry_after: float | None = None, succeed_after: int | None = None):
        self.retry_after = retry_after
        self.succeed_after = succeed_after
        self.calls = 0

    def send(self, message: RenderedMessage) -> SendOutcome:
        self.calls += 1
        if self.succeed_after is not None and self.calls > self.succeed_after:
            return SendOutcome.sent(f"ok-{self.calls}")
        return SendOutcome.failed("503 busy", permanent=False, retry_after=self.retry_after)

    def close(self) -> None:
        """Nothing held."""


def test_retries_stop_after_max_attempts_and_become_permanent(con):
    provider = FailingProvider()
    as_of = T0
    for attempt in range(1, MAX_ATTEMPTS + 1):
        dispatch(con, provider, as_of)
        row = ledger_row(con)
        assert row["attempts"] == attempt
        if attempt < MAX_ATTEMPTS:
            assert row["permanent"] is False
            as_of = row["next_attempt_at"]
    assert row["permanent"] is True and row["next_attempt_at"] is None
    assert row["reason"] == f"503 busy (gave up after {MAX_ATTEMPTS} attempts)"
    calls = provider.calls
    assert dispatch(con, provider, as_of + timedelta(days=30)).total() == 0
    assert provider.calls == calls == MAX_ATTEMPTS * 3  # each dispatch: one try + two retries


def test_immediate_retry_succeeds_within_one_dispatch(con):
    provider = FailingProvider(retry_after=0.01, succeed_after=1)
    summary = dispatch(con, provider, T0)
    assert summary.total("sent") == 1 and provider.calls == 2
    row = ledger_row(con)
    assert (row["status"], row["attempts"]) == ("sent", 1)


def test_a_long_retry_after_is_left_to_a_later_run(con):
    provider = FailingProvider(retry_after=3600)
    dispatch(con, provider, T0)
    assert provider.calls == 1  # no point waiting an hour inside the dispatch
    assert ledger_row(con)["next_attempt_at"] >= T0 + timedelta(hours=1)


def test_a_retry_decides_policies_again(con):
    dispatch(con, FailingProvider(), T0)
    con.execute(
        """update marts.dim_users set unsubscribed = true,
               traits = json_merge_patch(traits, '{"unsubscribed": true}')"""
    )
    due = ledger_row(con)["next_attempt_at"]
    provider = FailingProvider(succeed_after=0)
    dispatch(con, provider, due)
    row = ledger_row(con)
    assert (row["status"], row["reason"], provider.calls) == ("skipped", "unsubscribed", 0)


def test_rows_handed_over_when_a_run_stopped_are_permanent_and_not_retried(con):
    con.execute(
        """insert into nudge.delivery_ledger (idempotency_key, delivery_id, user_id, channel,
               status, attempts, as_of, attempted_at)
           values (?, 'd-ada', 'ada', 'email', 'sending', 1, ?, ?)""",
        [KEY, T0, T0],
    )
    provider = FailingProvider(succeed_after=0)
    summary = dispatch(con, provider, T0 + timedelta(days=1))
    assert summary.reconciled == 1 and provider.calls == 0
    row = ledger_row(con)
    assert (row["permanent"], row["reason"]) == (True, IN_FLIGHT_REASON)
    assert dispatch(con, provider, T0 + timedelta(days=9)).total() == 0


def test_backoff_is_deterministic_full_jitter_and_honours_retry_after():
    assert backoff_delay("k", 3) == backoff_delay("k", 3)
    assert 0 <= jitter_fraction("k", 1) < 1
    assert backoff_delay("k", 3) < timedelta(minutes=20)
    assert backoff_delay("k", 30) < timedelta(hours=6)
    assert backoff_delay("k", 1, retry_after=7200) == timedelta(hours=2)
    delays = {backoff_delay(f"k{n}", 4) for n in range(50)}
    assert len(delays) == 50  # spread out, not a thundering herd


def test_parse_retry_after_seconds_and_http_date():
    now = datetime(2026, 1, 1, 12, 0, 0)
    assert parse_retry_after("120", now=now) == 120.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:01:30 GMT", now=now) == 90.0
    assert parse_retry_after("Wed, 31 Dec 2025 12:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after(None, now=now) is None
