"""Dispatch with the capturing provider: policies, the ledger, idempotency and crash recovery."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from nudge.core.dsl.spec import (
    Content,
    FrequencyCap,
    Origin,
    Policies,
    QuietHours,
    Template,
    Topic,
)
from nudge.core.warehouse.journey_controls import pending_paused_journeys, request_control
from nudge.core.warehouse.schema import ensure_tables
from senders.capture import CapturingProvider
from senders.dispatch import dispatch_pending
from senders.handover_journal import HandoverJournal, journal_path
from senders.ledger import IN_FLIGHT_REASON
from senders.policy import PolicyError
from senders.providers import RenderedMessage, SendOutcome
from senders.settings import DispatchSettings

T0 = datetime(2026, 1, 1, 12, 0, 0)
ORIGIN = Origin("test.yml", "templates")
TEMPLATES = (
    Template(
        "welcome_email",
        "email",
        ORIGIN,
        {"subject": "Welcome, {{ user.first_name | default('there') }}", "html": "<p>Hi</p>"},
    ),
    Template("strict_email", "email", ORIGIN, {"subject": "Hi {{ user.first_name }}"}),
    Template("come_back_sms", "sms", ORIGIN, {"body": "We miss you, {{ user.id }}"}),
    Template("inbox_tip", "in_app", ORIGIN, {"title": "Tip", "body": "Try the CLI"}),
    Template("push_a", "push", ORIGIN, {"title": "Hi", "body": "Finish setting up"}),
    Template(
        "crm_hook",
        "webhook",
        ORIGIN,
        {"method": "POST", "url": "https://crm.example/hook", "json": {"id": "{{ user.id }}"}},
    ),
)
NO_POLICIES = Policies()
TOPICS = (Topic("product_updates", True), Topic("newsletter", False))


def content(policies: Policies = NO_POLICIES) -> Content:
    return Content(templates=TEMPLATES, topics=TOPICS, policies=policies)


@pytest.fixture
def con(tmp_path: Path):
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    ensure_tables(connection)
    connection.execute(
        """create schema marts;
           create table marts.dim_users (user_id varchar primary key, traits json, email varchar,
               phone varchar, timezone varchar, unsubscribed boolean)"""
    )
    yield connection
    connection.close()


def add_user(con: duckdb.DuckDBPyConnection, user_id: str, **traits: object) -> None:
    con.execute(
        "insert into marts.dim_users values (?, ?, ?, ?, ?, ?)",
        [
            user_id,
            json.dumps(traits),
            traits.get("email"),
            traits.get("phone"),
            traits.get("timezone"),
            bool(traits.get("unsubscribed", False)),
        ],
    )


def enqueue(
    con: duckdb.DuckDBPyConnection,
    key: str,
    user_id: str,
    *,
    template: str = "welcome_email",
    channel: str = "email",
    topic: str | None = None,
    transactional: bool = False,
    holdout: bool = False,
    as_of: datetime = T0,
) -> None:
    con.execute(
        """insert into nudge.outbox (idempotency_key, delivery_id, run_id, as_of, entry_id, journey,
               step, user_id, channel, template, topic, transactional, holdout, event_properties,
               created_at)
           values (?, ?, 'r0', ?, ?, 'onboarding', ?, ?, ?, ?, ?, ?, ?, null, ?)""",
        [
            key, f"d-{key}", as_of, f"e-{key}", f"step_{key}", user_id, channel, template, topic,
            transactional, holdout, as_of,
        ],
    )  # fmt: skip


def ledger(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, str | None]]:
    rows = con.execute(
        "select idempotency_key, status, reason from nudge.delivery_ledger"
    ).fetchall()
    return {key: (status, reason) for key, status, reason in rows}


def run(con, providers, *, as_of: datetime = T0, policies: Policies = NO_POLICIES, settings=None):
    return dispatch_pending(
        con,
        as_of=as_of,
        run_id=f"run-{as_of:%H%M}",
        content=content(policies),
        providers=providers,
        settings=settings,
    )


def test_sends_once_and_records_the_send(con):
    add_user(con, "u1", email="u1@example.com", first_name="Ada")
    add_user(con, "u2", email="u2@example.com")
    enqueue(con, "k1", "u1")
    enqueue(con, "k2", "u2")
    email = CapturingProvider("email")

    summary = run(con, {"email": email})

    assert summary.total("sent", "email") == 2
    assert [(m.address, m.content["subject"]) for m in email.messages] == [
        ("u1@example.com", "Welcome, Ada"),
        ("u2@example.com", "Welcome, there"),
    ]
    row = con.execute(
        """select status, provider, address, provider_message_id, attempted_at is not null,
                  completed_at is not null from nudge.delivery_ledger where idempotency_key = 'k1'"""
    ).fetchone()
    assert row == ("sent", "test", "u1@example.com", "test-d-k1", True, True)

    again = run(con, {"email": email}, as_of=T0 + timedelta(hours=1))
    assert again.total() == 0
    assert len(email.messages) == 2


class Crash(BaseException):
    """Stands in for the process dying in the middle of a batch."""


class CrashingProvider(CapturingProvider):
    def send(self, message: RenderedMessage) -> SendOutcome:
        if self.messages:
            raise Crash
        return super().send(message)


class RaisesAfterDelivering(CapturingProvider):
    """Delivers, then raises (a provider bug after the provider's answer)."""

    def send(self, message: RenderedMessage) -> SendOutcome:
        super().send(message)
        raise RuntimeError("bug after the answer")


def test_a_provider_that_raises_is_an_unknown_outcome_never_sent_again(con):
    add_user(con, "u1", email="u1@example.com")
    enqueue(con, "k-u1", "u1")
    raising = RaisesAfterDelivering("email")
    run(con, {"email": raising})
    run(con, {"email": raising}, as_of=T0 + timedelta(hours=1))
    assert len(raising.messages) == 1
    status, reason = ledger(con)["k-u1"]
    assert status == "failed"
    assert reason is not None and reason.startswith("outcome unknown: provider error: RuntimeError")


def test_after_a_crash_only_the_message_in_flight_is_unknown(con):
    for user in ("u1", "u2", "u3"):
        add_user(con, user, email=f"{user}@example.com")
        enqueue(con, f"k-{user}", user)
    crashing = CrashingProvider("email")
    with pytest.raises(Crash):
        run(con, {"email": crashing})
    # u1's outcome was committed to the hand-over journal when u2 was handed over; u3 was never
    # handed over; the ledger gets the journal at the next dispatch
    assert {k: s for k, (s, _) in ledger(con).items()} == dict.fromkeys(
        ("k-u1", "k-u2", "k-u3"), "sending"
    )
    with sqlite3.connect(journal_path(con)) as journal:
        turns = journal.execute("select idempotency_key, status from handovers").fetchall()
    assert sorted(turns) == [("k-u1", "sent"), ("k-u2", None)]

    email = CapturingProvider("email")
    summary = run(con, {"email": email}, as_of=T0 + timedelta(minutes=5))

    assert (summary.reconciled, summary.released) == (1, 1)
    assert [m.idempotency_key for m in email.messages] == ["k-u3"]
    assert ledger(con) == {
        "k-u1": ("sent", None),
        "k-u2": ("failed", IN_FLIGHT_REASON),
        "k-u3": ("sent", None),
    }


def test_a_fold_writes_outcomes_no_turn_wrote_to_the_messages_handed_over(con):
    # The last answers of a dispatch reach the ledger with its last fold, not through a turn.
    for key in ("k-1", "k-2"):
        con.execute(
            """insert into nudge.delivery_ledger (idempotency_key, delivery_id, user_id, channel,
                   status, attempts, as_of)
               values (?, ?, 'u1', 'email', 'sending', 1, ?)""",
            [key, f"d{key}", T0],
        )
    journal = HandoverJournal.beside(con)
    journal.write(outcomes=[], handed=[("k-1", "email"), ("k-2", "email")], now=T0)

    def outcome(key: str, status: str) -> dict[str, object]:
        return {"key": key, "status": status, "reason": None, "permanent": None,
                "next_attempt_at": None, "provider_message_id": f"p{key}", "details": None}  # fmt: skip

    journal.write(outcomes=[outcome("k-1", "sent")], handed=[], now=T0)
    done = T0 + timedelta(seconds=1)
    # k-1's outcome is in the journal already: the one given again is not applied over it
    journal.fold(con, outcomes=[outcome("k-1", "failed"), outcome("k-2", "sent")], now=done)
    journal.close()

    rows = con.execute(
        """select idempotency_key, status, provider_message_id, attempted_at, completed_at
           from nudge.delivery_ledger order by 1"""
    ).fetchall()
    assert rows == [("k-1", "sent", "pk-1", T0, T0), ("k-2", "sent", "pk-2", T0, done)]
    with sqlite3.connect(journal_path(con)) as db:
        assert db.execute("select count(*) from handovers").fetchone() == (0,)


def test_a_dispatch_of_one_channel_leaves_another_channels_messages_in_flight_alone(con):
    # On a server warehouse each channel's sender dispatches at the same time as the others:
    # the email rows in flight (here: left by a crash) belong to the email dispatch.
    for user in ("u1", "u2", "u3"):
        add_user(con, user, email=f"{user}@example.com", phone="+15550000")
        enqueue(con, f"k-{user}", user)
    enqueue(con, "k-sms", "u1", template="come_back_sms", channel="sms")
    with pytest.raises(Crash):
        dispatch_pending(con, as_of=T0, run_id="r1", content=content(),
                         providers={"email": CrashingProvider("email")}, channels=("email",))  # fmt: skip
    sms = CapturingProvider("sms")
    summary = dispatch_pending(con, as_of=T0, run_id="r1", content=content(),
                               providers={"sms": sms}, channels=("sms",))  # fmt: skip

    assert (summary.reconciled, summary.released) == (0, 0)
    assert [m.idempotency_key for m in sms.messages] == ["k-sms"]
    assert {k: s for k, (s, _) in ledger(con).items()} == {
        "k-u1": "sending", "k-u2": "sending", "k-u3": "sending", "k-sms": "sent",
    }  # fmt: skip
    with sqlite3.connect(journal_path(con)) as journal:
        turns = journal.execute("select idempotency_key, channel from handovers").fetchall()
    assert sorted(turns) == [("k-u1", "email"), ("k-u2", "email")]

    email = CapturingProvider("email")
    summary = dispatch_pending(con, as_of=T0 + timedelta(minutes=5), run_id="r2",
                               content=content(), providers={"email": email}, channels=("email",))  # fmt: skip
    assert (summary.reconciled, summary.released) == (1, 1)
    assert [m.idempotency_key for m in email.messages] == ["k-u3"]
    assert ledger(con)["k-u2"] == ("failed", IN_FLIGHT_REASON)


class SlowProvider(CapturingProvider):
    def send(self, message: RenderedMessage) -> SendOutcome:
        time.sleep(0.05)
        return super().send(message)


def test_a_used_up_time_budget_leaves_the_rest_pending_for_the_next_run(con):
    for n in range(20):
        add_user(con, f"u{n}", email=f"u{n}@example.com")
        enqueue(con, f"k{n}", f"u{n}")
    slow = SlowProvider("email")
    budget = DispatchSettings(time_budget=timedelta(seconds=0.2))

    first = run(con, {"email": slow}, settings=budget)

    sent = first.total("sent")
    assert 1 <= sent < 20 and first.total("pending") == 20 - sent
    assert first.notes() == [
        "send time budget of 0:00:00.200000 used up (NUDGE_SEND_TIME_BUDGET); "
        f"{20 - sent} email messages left pending for the next run"
    ]
    assert len(ledger(con)) == sent  # the rest have no ledger row
    second = run(con, {"email": slow}, as_of=T0 + timedelta(minutes=1))
    assert second.total("sent") == 20 - sent
    assert sorted(m.idempotency_key for m in slow.messages) == sorted(f"k{n}" for n in range(20))


def test_settings_from_env_name_the_wrong_variable():
    env = {"NUDGE_SEND_RETRIES": "1", "NUDGE_SEND_TIME_BUDGET": "0", "NUDGE_BREAKER_FAILURES": "5"}
    settings = DispatchSettings.from_env(env)
    assert (settings.send_retries, settings.time_budget, settings.breaker_failures) == (1, None, 5)
    for name, value in [("NUDGE_SEND_RETRIES", "-1"), ("NUDGE_SEND_RETRY_PAUSE", "soon"),
                        ("NUDGE_BREAKER_FAILURES", "0"), ("NUDGE_SEND_TIME_BUDGET", "-5")]:  # fmt: skip
        with pytest.raises(ValueError, match=f"^{name}={value!r} is not a"):
            DispatchSettings.from_env({name: value})


def test_unsubscribed_users_get_only_transactional_messages(con):
    add_user(con, "u1", email="u1@example.com", unsubscribed=True)
    enqueue(con, "promo", "u1")
    enqueue(con, "receipt", "u1", transactional=True)
    email = CapturingProvider("email")

    run(con, {"email": email})

    assert [m.idempotency_key for m in email.messages] == ["receipt"]
    assert ledger(con) == {"promo": ("skipped", "unsubscribed"), "receipt": ("sent", None)}


def test_global_unsubscribe_blocks_email_sms_and_push_only(con):
    # The DSL's rule: the global flag blocks every non-transactional email, sms and push; in-app
    # messages and webhooks are not addressed to the person's inbox, phone or device.
    add_user(con, "u1", email="u1@example.com", phone="+15550001", unsubscribed=True)
    con.execute(
        "create table marts.dim_user_devices (user_id varchar, device_id varchar, last_used_at timestamp)"
    )
    con.execute("insert into marts.dim_user_devices values ('u1', 'tok-1', null)")
    enqueue(con, "email", "u1")
    enqueue(con, "sms", "u1", channel="sms", template="come_back_sms")
    enqueue(con, "push", "u1", channel="push", template="push_a")
    enqueue(con, "in_app", "u1", channel="in_app", template="inbox_tip")
    enqueue(con, "webhook", "u1", channel="webhook", template="crm_hook")
    providers = {c: CapturingProvider(c) for c in ("email", "sms", "push", "in_app", "webhook")}

    run(con, providers)

    assert ledger(con) == {
        "email": ("skipped", "unsubscribed"),
        "sms": ("skipped", "unsubscribed"),
        "push": ("skipped", "unsubscribed"),
        "in_app": ("sent", None),
        "webhook": ("sent", None),
    }


def test_topic_preferences_and_defaults(con):
    prefs = {"topics": {"product_updates": False, "newsletter": True}}
    add_user(con, "opted", email="a@example.com", cio_subscription_preferences=prefs)
    add_user(con, "plain", email="b@example.com")
    enqueue(con, "opted-updates", "opted", topic="product_updates")
    enqueue(con, "opted-news", "opted", topic="newsletter")
    enqueue(con, "plain-updates", "plain", topic="product_updates")
    enqueue(con, "plain-news", "plain", topic="newsletter")
    enqueue(con, "plain-news-tx", "plain", topic="newsletter", transactional=True)

    run(con, {"email": CapturingProvider("email")})

    assert ledger(con) == {
        "opted-updates": ("skipped", "topic unsubscribed: product_updates on email"),
        "opted-news": ("sent", None),
        "plain-updates": ("sent", None),
        "plain-news": ("skipped", "topic unsubscribed: newsletter on email"),
        "plain-news-tx": ("sent", None),
    }


def test_a_per_channel_preference_skips_only_that_channel(con):
    # Off for product updates by sms, on for the newsletter by sms only (default: unsubscribed).
    prefs = {"topics": {"product_updates": {"email": True, "sms": False}, "newsletter": {"sms": 1}}}
    add_user(
        con, "u1", email="a@example.com", phone="+15550001", cio_subscription_preferences=prefs
    )
    enqueue(con, "updates-email", "u1", topic="product_updates")
    enqueue(
        con, "updates-sms", "u1", channel="sms", template="come_back_sms", topic="product_updates"
    )
    enqueue(con, "news-email", "u1", topic="newsletter")
    enqueue(con, "news-sms", "u1", channel="sms", template="come_back_sms", topic="newsletter")
    providers = {c: CapturingProvider(c) for c in ("email", "sms")}

    run(con, providers)

    assert ledger(con) == {
        "updates-email": ("sent", None),
        "updates-sms": ("skipped", "topic unsubscribed: product_updates on sms"),
        "news-email": ("skipped", "topic unsubscribed: newsletter on email"),
        "news-sms": ("sent", None),
    }
    assert [m.idempotency_key for m in providers["sms"].messages] == ["news-sms"]


def test_missing_address_deleted_user_holdout_and_missing_provider(con):
    add_user(con, "no_email", first_name="X")
    add_user(con, "no_phone", email="p@example.com")
    add_user(con, "held_out", email="h@example.com")
    enqueue(con, "no-email", "no_email")
    enqueue(con, "no-phone", "no_phone", channel="sms", template="come_back_sms")
    enqueue(con, "deleted", "ghost")
    enqueue(con, "holdout", "held_out", holdout=True)
    enqueue(con, "inbox", "no_email", channel="in_app", template="inbox_tip")
    email = CapturingProvider("email")

    summary = run(con, {"email": email, "sms": CapturingProvider("sms")})

    assert email.messages == []
    assert ledger(con) == {
        "no-email": ("undeliverable", "no address"),
        "no-phone": ("undeliverable", "no address"),
        "deleted": ("dropped", "user deleted"),
        "holdout": ("skipped", "holdout"),
        "inbox": ("failed", "no provider configured for channel in_app"),
    }
    assert summary.total("undeliverable") == 2


def test_frequency_caps_count_the_ledger_and_this_dispatch(con):
    caps = Policies(frequency_caps=(FrequencyCap("email", 1, timedelta(days=1)),))
    add_user(con, "u1", email="u1@example.com")
    add_user(con, "u2", email="u2@example.com", phone="+15550100")
    enqueue(con, "a1", "u1")
    enqueue(con, "a2", "u1")
    enqueue(con, "a-receipt", "u1", transactional=True)
    enqueue(con, "b1", "u2")
    enqueue(con, "b-sms", "u2", channel="sms", template="come_back_sms")
    providers = {"email": CapturingProvider("email"), "sms": CapturingProvider("sms")}

    run(con, providers, policies=caps)
    enqueue(con, "a3", "u1", as_of=T0 + timedelta(hours=23))
    run(con, providers, as_of=T0 + timedelta(hours=23), policies=caps)
    enqueue(con, "a4", "u1", as_of=T0 + timedelta(days=1))
    run(con, providers, as_of=T0 + timedelta(days=1), policies=caps)

    assert ledger(con) == {
        "a1": ("sent", None),
        "a2": ("undeliverable", "frequency cap"),
        "a-receipt": ("sent", None),
        "b1": ("sent", None),
        "b-sms": ("sent", None),
        "a3": ("undeliverable", "frequency cap"),
        "a4": ("sent", None),  # a1 (sent at T0) is outside (T0, T0 + 1d]
    }


def test_cap_on_any_channel(con):
    caps = Policies(frequency_caps=(FrequencyCap("any", 1, timedelta(hours=6)),))
    add_user(con, "u1", email="u1@example.com", phone="+15550100")
    enqueue(con, "email", "u1")
    enqueue(con, "sms", "u1", channel="sms", template="come_back_sms")
    enqueue(con, "inbox", "u1", channel="in_app", template="inbox_tip")
    providers = {c: CapturingProvider(c) for c in ("email", "sms", "in_app")}

    run(con, providers, policies=caps)

    assert ledger(con) == {
        "email": ("sent", None),
        "sms": ("undeliverable", "frequency cap"),
        "inbox": ("sent", None),
    }


def test_quiet_hours_hold_then_release(con):
    quiet = Policies(
        quiet_hours=QuietHours(
            "21:00", "08:00", timezone_attribute="timezone", default_timezone="UTC"
        )
    )
    add_user(con, "ny", email="ny@example.com", timezone="America/New_York")
    add_user(con, "tokyo", email="tk@example.com", timezone="Asia/Tokyo")
    add_user(con, "nowhere", email="nw@example.com", timezone="Not/AZone")
    night_in_ny = datetime(2026, 1, 1, 3, 0)  # 22:00 in New York, 12:00 in Tokyo, 03:00 UTC
    for user in ("ny", "tokyo", "nowhere"):
        enqueue(con, user, user, as_of=night_in_ny)
    enqueue(con, "ny-receipt", "ny", transactional=True, as_of=night_in_ny)
    email = CapturingProvider("email")

    first = run(con, {"email": email}, as_of=night_in_ny, policies=quiet)

    assert first.total("held") == 2
    assert ledger(con) == {"tokyo": ("sent", None), "ny-receipt": ("sent", None)}
    # 02:59 in New York; an unknown zone falls back to the default (UTC), still before 08:00.
    still_night = run(con, {"email": email}, as_of=datetime(2026, 1, 1, 7, 59), policies=quiet)
    assert still_night.total("held") == 2
    morning = run(con, {"email": email}, as_of=datetime(2026, 1, 1, 13, 0), policies=quiet)
    assert morning.total("sent") == 2
    assert ledger(con)["ny"] == ledger(con)["nowhere"] == ("sent", None)
    assert {m.idempotency_key for m in email.messages[-2:]} == {"ny", "nowhere"}


def test_render_error_fails_that_message_and_the_batch_goes_on(con):
    add_user(con, "u1", email="u1@example.com")
    add_user(con, "u2", email="u2@example.com", first_name="Bo")
    enqueue(con, "broken", "u1", template="strict_email")
    enqueue(con, "fine", "u2", template="strict_email")
    email = CapturingProvider("email")

    summary = run(con, {"email": email})

    status, reason = ledger(con)["broken"]
    assert status == "failed"
    assert "'strict_email'" in reason and "'subject'" in reason and "user.first_name" in reason
    assert [m.content["subject"] for m in email.messages] == ["Hi Bo"]
    assert summary.by_channel() == {"email": {"failed": 1, "sent": 1}}


def test_dispatch_needs_dim_users(tmp_path):
    connection = duckdb.connect(str(tmp_path / "empty.duckdb"))
    ensure_tables(connection)
    with pytest.raises(PolicyError, match=r"marts\.dim_users"):
        run(connection, {"email": CapturingProvider("email")})


def test_an_email_trait_that_is_not_one_bare_address_is_never_sent(con):
    # victim@example.com bounced; the other forms would reach it (or many) past that record.
    con.execute(
        "insert into nudge.suppressed_addresses values ('email', 'victim@example.com',"
        " 'bounced', ?)",
        [T0],
    )
    forms = {
        "display": "Victim <victim@example.com>",
        "angle": "<VICTIM@example.com>",
        "list": "victim@example.com, other@example.com",
        "bare": "victim@example.com",
        "fine": "Ann.Lee+news@example.com",
    }
    for user, address in forms.items():
        add_user(con, user, email=address)
        enqueue(con, f"k-{user}", user)
    email = CapturingProvider("email")

    run(con, {"email": email})

    assert [m.address for m in email.messages] == ["Ann.Lee+news@example.com"]
    assert ledger(con) == {
        "k-display": ("undeliverable", "not one email address"),
        "k-angle": ("undeliverable", "not one email address"),
        "k-list": ("undeliverable", "not one email address"),
        "k-bare": ("dropped", "suppressed address: bounced"),
        "k-fine": ("sent", None),
    }


def test_addresses_per_channel(con):
    con.execute(
        """create table marts.dim_user_devices (user_id varchar, device_id varchar, last_used_at timestamp);
           insert into marts.dim_user_devices values
               ('u1', 'old-token', '2025-01-01'), ('u1', 'new-token', '2025-06-01')"""
    )
    add_user(con, "u1", email="u1@example.com")
    add_user(con, "u2", email="u2@example.com")
    enqueue(con, "push-u1", "u1", channel="push", template="push_a")
    enqueue(con, "push-u2", "u2", channel="push", template="push_a")
    enqueue(con, "inbox", "u1", channel="in_app", template="inbox_tip")
    enqueue(con, "hook", "u2", channel="webhook", template="crm_hook")
    providers = {c: CapturingProvider(c) for c in ("push", "in_app", "webhook")}

    run(con, providers)

    sent = {m.idempotency_key: m.address for p in providers.values() for m in p.messages}
    # push goes to every registered device, most recently used first
    assert sent == {
        "push-u1": "new-token old-token",
        "inbox": "u1",
        "hook": "https://crm.example/hook",
    }
    assert ledger(con)["push-u2"] == ("undeliverable", "no address")
    assert providers["webhook"].messages[0].content["json"] == {"id": "u2"}


def test_rows_of_a_paused_journey_are_held_until_resume(con):
    add_user(con, "u1", email="u1@example.com")
    enqueue(con, "planned-before-pause", "u1")
    con.execute("insert into nudge.journey_controls values ('onboarding', true, ?)", [T0])
    email = CapturingProvider("email")

    paused = run(con, {"email": email})

    assert paused.total("held") == 1
    assert ledger(con) == {} and email.messages == []
    con.execute("update nudge.journey_controls set paused = false where journey = 'onboarding'")
    resumed = run(con, {"email": email})
    assert resumed.total("sent") == 1
    assert ledger(con) == {"planned-before-pause": ("sent", None)}


class PausingProvider(CapturingProvider):
    """Sends, and after its first message an operator queues `nudge journeys pause onboarding`
    (the request file the CLI writes while a run holds the warehouse)."""

    def __init__(self, requests_dir: Path):
        super().__init__("email")
        self.requests_dir = requests_dir

    def send(self, message: RenderedMessage) -> SendOutcome:
        outcome = super().send(message)
        if len(self.messages) == 1:
            request_control(self.requests_dir, "onboarding", paused=True, at=T0)
        return outcome


def test_a_pause_queued_during_the_send_stops_that_journey_at_the_next_message(con, tmp_path):
    for n in range(5):
        add_user(con, f"u{n}", email=f"u{n}@example.com")
        enqueue(con, f"k{n}", f"u{n}")
    requests_dir = tmp_path / "control_requests"
    email = PausingProvider(requests_dir)

    summary = dispatch_pending(
        con,
        as_of=T0,
        run_id="run-pause",
        content=content(),
        providers={"email": email},
        paused_journeys=lambda: pending_paused_journeys(requests_dir),
    )

    assert [m.idempotency_key for m in email.messages] == ["k0"]
    assert summary.total("pending") == 4
    assert summary.notes() == [
        "journey onboarding was paused during the send; 4 email messages left pending for the "
        "next run"
    ]
    assert ledger(con) == {"k0": ("sent", None)}  # the rest are pending, not failed
