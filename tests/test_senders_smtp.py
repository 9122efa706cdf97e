"""Email end to end: dispatch through SmtpEmailProvider to a real aiosmtpd server on a free port."""

from __future__ import annotations

import email
import email.policy
import json
import os
import signal
import smtplib
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

import duckdb
import pytest

from nudge.core.dsl.spec import Content, Origin, Template
from nudge.devtools.smtp_sink import SmtpSink, count_messages
from senders.dispatch import dispatch_pending
from senders.email import SmtpEmailProvider, SmtpSettings
from senders.providers import RenderedMessage
from senders.unsubscribe import verify_token

T0 = datetime(2026, 1, 1, 12, 0, 0)
REFUSED = "gone@example.com"
CONTENT = Content(
    templates=(
        Template(
            "welcome_email",
            "email",
            Origin("t.yml", "templates"),
            {
                "subject": "Welcome, {{ user.first_name }} & friends",
                "preheader": "Three things to try",
                "html": "<html><body><p>Hi {{ user.first_name }}</p>"
                "<a href='{{ unsubscribe_url }}'>Unsubscribe</a></body></html>",
            },
        ),
    )
)


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[SmtpSink]:
    with SmtpSink("127.0.0.1", 0, tmp_path / "mail", refuse=[REFUSED]) as running:
        yield running


@pytest.fixture
def con(sender_warehouse: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    return sender_warehouse


def add_user_with_send(con: duckdb.DuckDBPyConnection, user_id: str, address: str) -> None:
    traits = {"email": address, "first_name": user_id.title()}
    con.execute(
        "insert into marts.dim_users values (?, ?, ?, null, null, false)",
        [user_id, json.dumps(traits), address],
    )
    con.execute(
        """insert into nudge.outbox (idempotency_key, delivery_id, run_id, as_of, entry_id, journey,
               step, user_id, channel, template, transactional, holdout, created_at)
           values (?, ?, 'r0', ?, ?, 'onboarding', 'welcome', ?, 'email', 'welcome_email',
                   false, false, ?)""",
        [f"k-{user_id}", f"d-{user_id}", T0, f"e-{user_id}", user_id, T0],
    )


def received(sink: SmtpSink) -> dict[str, EmailMessage]:
    messages = [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sink.messages()
    ]
    return {str(m["To"]): m for m in messages}  # type: ignore[misc]


def provider_for(sink: SmtpSink) -> SmtpEmailProvider:
    return SmtpEmailProvider(
        SmtpSettings(host=sink.host, port=sink.port, sender="Nudge <hello@mail.example>")
    )


def dispatch(con, sink: SmtpSink):
    return dispatch_pending(
        con, as_of=T0, run_id="run-1", content=CONTENT, providers={"email": provider_for(sink)}
    )


def test_emails_arrive_with_headers_and_parts_and_are_sent_once(con, sink):
    add_user_with_send(con, "ada", "ada@example.com")
    add_user_with_send(con, "bob", "bob@example.com")

    summary = dispatch(con, sink)

    assert summary.total("sent") == 2
    mails = received(sink)
    assert set(mails) == {"ada@example.com", "bob@example.com"}
    ada = mails["ada@example.com"]
    assert ada["Subject"] == "Welcome, Ada & friends"
    assert ada["From"] == "Nudge <hello@mail.example>"
    assert ada["Date"] is not None
    assert ada["Message-ID"].endswith("@mail.example>")
    assert ada["X-Nudge-Delivery-Id"] == "d-ada"
    assert ada["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = ada["List-Unsubscribe"].strip("<>")
    assert link.startswith("https://nudge.test/u/")  # NUDGE_PUBLIC_URL from conftest
    assert verify_token(link.rsplit("/", 1)[1]) == ("ada", None, "email")
    assert ada.get_content_type() == "multipart/alternative"
    text = ada.get_body(("plain",)).get_content()
    html = ada.get_body(("html",)).get_content()
    assert "Hi Ada" in text and link in text
    assert "Three things to try" in html and "display:none" in html
    assert html.index("Three things to try") < html.index("Hi Ada")
    row = con.execute(
        "select status, provider, provider_message_id from nudge.delivery_ledger "
        "where idempotency_key = 'k-ada'"
    ).fetchall()
    assert row == [("sent", "smtp", ada["Message-ID"])]

    again = dispatch(con, sink)
    assert again.total() == 0
    assert count_messages(sink.maildir) == 2


def test_rcpt_5xx_is_a_permanent_failure_and_the_rest_still_go(con, sink):
    add_user_with_send(con, "gone", REFUSED)
    add_user_with_send(con, "zed", "zed@example.com")

    dispatch(con, sink)

    rows = dict(
        con.execute(
            "select user_id, status || ': ' || coalesce(reason, '') from nudge.delivery_ledger"
        ).fetchall()
    )
    assert rows["zed"] == "sent: "
    assert rows["gone"].startswith("failed: recipient refused: 550")
    assert "mailbox unavailable" in rows["gone"]
    assert set(received(sink)) == {"zed@example.com"}


def message(n: int, address: str = "x@example.com") -> RenderedMessage:
    return RenderedMessage(
        delivery_id=f"d{n}", idempotency_key=f"k{n}", user_id="u", channel="email",
        address=address, journey="j", step="s", template="t",
        content={"subject": f"m{n}", "text": "hello"},
    )  # fmt: skip


def test_provider_classifies_errors_and_reconnects(tmp_path):
    closed = SmtpSink("127.0.0.1", 0, tmp_path / "none")
    unreachable = SmtpEmailProvider(SmtpSettings(host="127.0.0.1", port=closed.port, timeout=2))
    outcome = unreachable.send(message(1))
    assert (outcome.status, outcome.permanent) == ("failed", False)
    assert outcome.reason.startswith("smtp connection failed")

    sink = SmtpSink("127.0.0.1", 0, tmp_path / "mail").start()
    provider = SmtpEmailProvider(SmtpSettings(host=sink.host, port=sink.port))
    try:
        assert provider.send(message(2)).status == "sent"
        sink.stop()  # the server goes away; the provider's connection is now dead
        sink.start()
        assert provider.send(message(3)).status == "sent"
    finally:
        provider.close()
        sink.stop()
    assert count_messages(sink.maildir) == 2


def test_settings_from_env(monkeypatch):
    monkeypatch.setenv("NUDGE_SMTP_HOST", "smtp.example")
    monkeypatch.setenv("NUDGE_SMTP_PORT", "2525")
    monkeypatch.setenv("NUDGE_SMTP_STARTTLS", "true")
    monkeypatch.setenv("NUDGE_SMTP_USERNAME", "me")
    monkeypatch.setenv("NUDGE_EMAIL_FROM", "Team <team@brand.example>")
    settings = SmtpSettings.from_env()
    assert (settings.host, settings.port, settings.starttls, settings.username) == (
        "smtp.example", 2525, True, "me",
    )  # fmt: skip
    assert settings.sender_domain == "brand.example"
    assert (settings.timeout, settings.data_timeout) == (20.0, 600.0)
    monkeypatch.setenv("NUDGE_SMTP_TIMEOUT", "2.5")
    monkeypatch.setenv("NUDGE_SMTP_DATA_TIMEOUT", "60")
    assert (SmtpSettings.from_env().timeout, SmtpSettings.from_env().data_timeout) == (2.5, 60.0)
    for name, value in [("NUDGE_SMTP_PORT", "smtp"), ("NUDGE_SMTP_PORT", "70000"),
                        ("NUDGE_SMTP_TIMEOUT", "0"), ("NUDGE_SMTP_DATA_TIMEOUT", "ten")]:  # fmt: skip
        monkeypatch.setenv(name, value)
        with pytest.raises(ValueError, match=f"^{name}={value!r} is not a"):
            SmtpSettings.from_env()
        monkeypatch.delenv(name)


def test_sink_runs_from_the_command_line(tmp_path):
    port = SmtpSink("127.0.0.1", 0, tmp_path).port
    maildir = tmp_path / "cli-mail"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nudge.devtools.smtp_sink",
            "--port",
            str(port),
            "--maildir",
            str(maildir),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    try:
        assert "listening" in process.stdout.readline()
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.sendmail("a@example.com", ["b@example.com"], b"Subject: hi\r\n\r\nhello\r\n")
        assert count_messages(maildir) == 1
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    stored = next(maildir.glob("*.eml")).read_bytes()
    assert stored.startswith(b"Delivered-To: b@example.com\r\n")
    assert not list(maildir.glob(".*.tmp"))


def test_a_non_ascii_address_goes_out_over_smtputf8(sink):
    provider = provider_for(sink)
    try:
        assert provider.send(message(1, address="zoë@example.com")).status == "sent"
        assert provider.send(message(2)).status == "sent"
    finally:
        provider.close()
    assert set(received(sink)) == {"zoë@example.com", "x@example.com"}


def test_the_dagster_resource_builds_its_provider_from_the_parsed_settings(monkeypatch, tmp_path):
    from nudge.core.workspace import Workspace
    from orchestration.resources import delivery_resources

    workspace = Workspace(home=tmp_path, content_dir=tmp_path)

    monkeypatch.setenv("NUDGE_SMTP_PORT", "2525")
    monkeypatch.setenv("NUDGE_SMTP_TIMEOUT", "3")
    monkeypatch.setenv("NUDGE_SMTP_DATA_TIMEOUT", "90")
    monkeypatch.setenv("NUDGE_EMAIL_FROM", "Team <team@brand.example>")
    provider = delivery_resources()["email"].open_provider(workspace)
    assert isinstance(provider, SmtpEmailProvider)
    assert provider.settings == SmtpSettings.from_env()
    monkeypatch.setenv("NUDGE_SMTP_TIMEOUT", "forever")
    with pytest.raises(ValueError, match=r"^NUDGE_SMTP_TIMEOUT='forever' is not a number"):
        delivery_resources()
