"""Per-run counts per journey step and channel in nudge.run_counts, and the journey version
copied from the outbox into the ledger."""

from __future__ import annotations

import json
from datetime import datetime

import duckdb
import pytest

from nudge.core.dsl.spec import Content, Origin, Template
from senders.capture import CapturingProvider
from senders.dispatch import dispatch_pending
from senders.providers import RenderedMessage, SendOutcome

T0 = datetime(2026, 1, 1, 12, 0, 0)
ORIGIN = Origin("t.yml", "templates")
CONTENT = Content(
    templates=(
        Template("hello", "email", ORIGIN, {"subject": "Hi"}),
        Template("broken", "email", ORIGIN, {"subject": "{{ user.first_name }}"}),
        Template("ping", "sms", ORIGIN, {"body": "ping"}),
    )
)


@pytest.fixture
def con(sender_warehouse: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    return sender_warehouse


def user(con, user_id: str, *, email: str | None, unsubscribed: bool = False) -> None:
    con.execute(
        "insert into marts.dim_users values (?, ?, ?, '+15550000', null, ?)",
        [user_id, json.dumps({"email": email, "unsubscribed": unsubscribed}), email, unsubscribed],
    )


def enqueue(con, key: str, user_id: str, step: str, template: str, channel: str = "email"):
    con.execute(
        """insert into nudge.outbox (idempotency_key, delivery_id, run_id, as_of, entry_id, journey,
               step, user_id, channel, template, transactional, holdout, created_at)
           values (?, ?, 'r0', ?, ?, 'onboarding', ?, ?, ?, ?, false, false, ?)""",
        [key, f"d-{key}", T0, f"e-{user_id}", step, user_id, channel, template, T0],
    )


class RefusingEmail:
    name = "refusing"
    channel = "email"

    def send(self, message: RenderedMessage) -> SendOutcome:
        if message.user_id == "cy":
            return SendOutcome.failed("550 no such user", permanent=True)
        return SendOutcome.sent("ok")

    def close(self) -> None:
        """Nothing held."""


def test_dispatch_writes_counts_per_step_and_channel(con):
    user(con, "ada", email="ada@example.com")
    user(con, "bob", email="bob@example.com", unsubscribed=True)
    user(con, "cy", email="cy@example.com")
    user(con, "dee", email=None)
    for u in ("ada", "bob", "cy", "dee"):
        enqueue(con, f"w-{u}", u, "welcome", "hello")
    enqueue(con, "b-ada", "ada", "tips", "broken")
    enqueue(con, "p-ada", "ada", "ping", "ping", channel="sms")

    dispatch_pending(
        con, as_of=T0, run_id="run-1", content=CONTENT,
        providers={"email": RefusingEmail(), "sms": CapturingProvider("sms")},
    )  # fmt: skip

    rows = con.execute(
        """select step, channel, planned, attempted, succeeded, failed, skipped
           from nudge.run_counts where run_id = 'run-1' and as_of = ? order by step""",
        [T0],
    ).fetchall()
    assert rows == [
        ("ping", "sms", 1, 1, 1, 0, 0),
        ("tips", "email", 1, 0, 0, 1, 0),  # render error: failed without an attempt
        ("welcome", "email", 4, 2, 1, 1, 2),  # bob unsubscribed, dee has no address
    ]

    # Dispatching again under the same run id adds nothing new (nothing is pending).
    dispatch_pending(
        con, as_of=T0, run_id="run-1", content=CONTENT,
        providers={"email": RefusingEmail(), "sms": CapturingProvider("sms")},
    )  # fmt: skip
    assert con.execute("select sum(planned) from nudge.run_counts").fetchone() == (6,)


def test_journey_version_is_copied_into_the_ledger(con):
    con.execute("alter table nudge.outbox add column if not exists journey_version varchar")
    user(con, "ada", email="ada@example.com")
    user(con, "bob", email="bob@example.com", unsubscribed=True)
    enqueue(con, "w-ada", "ada", "welcome", "hello")
    enqueue(con, "w-bob", "bob", "welcome", "hello")
    con.execute("update nudge.outbox set journey_version = 'v1'")

    dispatch_pending(
        con, as_of=T0, run_id="run-1", content=CONTENT,
        providers={"email": CapturingProvider("email")},
    )  # fmt: skip

    rows = con.execute(
        "select user_id, status, journey_version from nudge.delivery_ledger order by 1"
    ).fetchall()
    assert rows == [("ada", "sent", "v1"), ("bob", "skipped", "v1")]
