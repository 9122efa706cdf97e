"""No trait can add an email header or a body: refused at render time, permanently, and never
written by the message builder (CVE-2024-6923 in this interpreter included)."""

from __future__ import annotations

import json
from datetime import datetime
from email.policy import EmailPolicy

import duckdb
import pytest

from nudge.core.dsl.spec import Content, Origin, Template
from nudge.devtools.smtp_sink import SmtpSink
from senders import mime
from senders.dispatch import dispatch_pending
from senders.email import SmtpEmailProvider, SmtpSettings, build_email
from senders.providers import RenderedMessage

T0 = datetime(2026, 1, 1, 12, 0, 0)
ENCODED_INJECTION = (
    "=?utf-8?q?Bob=0D=0AX-Injected:_yes=0D=0AReply-To:_attacker@evil.example=0D=0A=0D=0A"
    "Phishing_body?="
)
HOSTILE_NAMES = {
    "encoded": ENCODED_INJECTION,
    "raw": "Bob\r\nX-Injected: yes\r\n\r\nPhishing body",
    "encoded_lf": "=?utf-8?q?Bob=0AX-Injected:_yes=0A=0APhishing_body?=",
}
CONTENT = Content(
    templates=(
        Template(
            "welcome",
            "email",
            Origin("t.yml", "templates"),
            {"subject": "Welcome, {{ user.first_name }}", "html": "<p>Hi</p>"},
        ),
    )
)


@pytest.fixture
def con(sender_warehouse: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    return sender_warehouse


def add_send(con: duckdb.DuckDBPyConnection, user_id: str, first_name: str) -> None:
    address = f"{user_id}@example.com"
    con.execute(
        "insert into marts.dim_users values (?, ?, ?, null, null, false)",
        [user_id, json.dumps({"first_name": first_name}), address],
    )
    con.execute(
        """insert into nudge.outbox (idempotency_key, delivery_id, run_id, as_of, entry_id, journey,
               step, user_id, channel, template, transactional, holdout, created_at)
           values (?, ?, 'r0', ?, ?, 'j', 'welcome', ?, 'email', 'welcome', false, false, ?)""",
        [user_id, f"d-{user_id}", T0, f"e-{user_id}", user_id, T0],
    )


def test_a_trait_injecting_headers_is_refused_permanently_and_never_reaches_smtp(
    con, smtp_sink: SmtpSink
):
    for user_id, first_name in HOSTILE_NAMES.items():
        add_send(con, user_id, first_name)
    add_send(con, "ada", "Ada")
    provider = SmtpEmailProvider(SmtpSettings(host=smtp_sink.host, port=smtp_sink.port))

    for run in ("run-1", "run-2"):  # the second dispatch must not retry the refused ones
        dispatch_pending(con, as_of=T0, run_id=run, content=CONTENT, providers={"email": provider})

    received = [path.read_bytes() for path in smtp_sink.messages()]
    assert len(received) == 1 and b"Subject: Welcome, Ada" in received[0]
    for data in received:
        assert b"X-Injected" not in data and b"evil.example" not in data
        assert b"Phishing" not in data
    rows = con.execute(
        "select user_id, status, permanent, reason from nudge.delivery_ledger"
    ).fetchall()
    by_user = {row[0]: row[1:] for row in rows}
    assert by_user["ada"][0] == "sent"
    for user_id in HOSTILE_NAMES:
        status, permanent, reason = by_user[user_id]
        assert (status, permanent) == ("failed", True), user_id
        assert "field 'subject'" in reason and "header 'Subject' refused" in reason
        assert "line break" in reason


@pytest.mark.parametrize("subject", HOSTILE_NAMES.values(), ids=HOSTILE_NAMES.keys())
def test_build_email_never_writes_an_injected_header(subject: str):
    message = RenderedMessage(
        "d1", "k1", "u1", "email", "u1@example.com", "j", "s", "t", {"subject": subject}
    )
    with pytest.raises(mime.UnsafeHeaderValue, match="header 'Subject' refused"):
        build_email(message, SmtpSettings())


class _LineBreakingPolicy(EmailPolicy):
    """A policy whose folding emits a raw line break, as an interpreter bug would."""

    def fold_binary(self, name: str, value: object) -> bytes:
        return f"{name}: Bob\nX-Injected: yes\r\n".encode()


def test_folded_bytes_with_a_line_break_that_is_not_a_fold_are_refused():
    with pytest.raises(mime.UnsafeHeaderValue, match=r"'Subject'.*not a fold"):
        mime._folded("Subject", "Bob, \u00e9t\u00e9", _LineBreakingPolicy())
    folded = mime.header("Subject", "\u00e9t\u00e9 " * 40)  # long, non-ASCII: folded
    assert folded.count(b"\r\n") > 1 and b"\r\n " in folded
