"""Provider callbacks over HTTP, signed as each provider signs them, folded into the ledger.

A real uvicorn server takes SendGrid's, Postmark's and Twilio's callbacks; the signatures are
made with the providers' own schemes (Twilio's with its client library). The next dispatch moves
each ledger row forward and never sends to an address that hard-bounced, complained or does not
exist, transactional messages included.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from twilio.request_validator import RequestValidator

from collector.feedback import FeedbackReceiver
from nudge.core.dsl.spec import Content, Origin, Template
from nudge.core.landing.loader import load_new_files
from nudge.core.workspace import Workspace
from senders.capture import CapturingProvider
from senders.dispatch import dispatch_pending
from senders.feedback import apply_feedback
from senders.transactional import STORE_NAME

T0 = datetime(2026, 1, 1, 12, 0, 0)
T1 = datetime(2026, 1, 2, 12, 0, 0)
TWILIO_TOKEN = "twilio-auth-token-for-tests"
POSTMARK_CREDENTIALS = "postmark:hook-password"
CONTENT = Content(
    templates=(
        Template(
            "hello", "email", Origin("t.yml", "templates"), {"subject": "Hi", "html": "<p>Hi</p>"}
        ),
        Template("text", "sms", Origin("t.yml", "templates"), {"body": "Hi"}),
    )
)


@pytest.fixture
def signing_key(monkeypatch: pytest.MonkeyPatch) -> ec.EllipticCurvePrivateKey:
    """SendGrid signs with its private key; the operator pastes the public one (base64 DER)."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    monkeypatch.setenv("NUDGE_SENDGRID_WEBHOOK_PUBLIC_KEY", base64.b64encode(public).decode())
    monkeypatch.setenv("NUDGE_TWILIO_AUTH_TOKEN", TWILIO_TOKEN)
    monkeypatch.setenv("NUDGE_POSTMARK_WEBHOOK_CREDENTIALS", POSTMARK_CREDENTIALS)
    return key


@pytest.fixture
def server(tmp_path: Path, signing_key, asgi_server) -> str:
    workspace = Workspace(home=tmp_path, content_dir=tmp_path / "content").ensure()
    return asgi_server(Starlette(routes=FeedbackReceiver(workspace).routes()))


def add_send(con, user_id: str, channel: str = "email", *, transactional: bool = False, at=T0):
    template = "hello" if channel == "email" else "text"
    con.execute(
        """insert into nudge.outbox (idempotency_key, delivery_id, run_id, as_of, entry_id, journey,
               step, user_id, channel, template, transactional, holdout, created_at)
           values (?, ?, 'r0', ?, ?, 'j', 's', ?, ?, ?, ?, false, ?)""",
        [
            f"k-{user_id}-{channel}-{at:%d}",
            f"d-{user_id}-{channel}-{at:%d}",
            at,
            f"e-{user_id}-{at:%d}",
            user_id,
            channel,
            template,
            transactional,
            at,
        ],
    )


def sendgrid_post(base: str, key: ec.EllipticCurvePrivateKey, events: list, *, tamper=False):
    body = json.dumps(events).encode()
    timestamp = "1767268800"
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return requests.post(
        f"{base}/webhooks/sendgrid",
        data=body + (b" " if tamper else b""),
        headers={
            "Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        },
        timeout=10,
    )


def sendgrid_event(user: str, event: str, **extra) -> dict:
    return {
        "email": f"{user.title()}@Example.com",
        "timestamp": 1767268800 + len(event),
        "event": event,
        "sg_message_id": f"sg-{user}",
        "nudge_delivery_id": f"d-{user}-email-01",
        "nudge_user_id": user,
        **extra,
    }


def twilio_post(base: str, user: str, fields: dict, *, token=TWILIO_TOKEN):
    url = f"{base}/webhooks/twilio?nudge_delivery_id=d-{user}-sms-01&nudge_user_id={user}"
    signature = RequestValidator(token).compute_signature(url, fields)
    return requests.post(url, data=fields, headers={"X-Twilio-Signature": signature}, timeout=10)


def test_callbacks_move_the_ledger_forward_and_suppress_dead_addresses(
    sender_warehouse: duckdb.DuckDBPyConnection, server: str, signing_key, tmp_path: Path
) -> None:
    con = sender_warehouse
    for user in ("ada", "bob", "cy", "dee", "eve"):
        con.execute(
            "insert into marts.dim_users values (?, '{}', ?, ?, null, false)",
            [user, f"{user}@example.com", f"+1555000{len(user)}{user[0]}"],
        )
        add_send(con, user)
    add_send(con, "eve", "sms")
    providers = {"email": CapturingProvider("email"), "sms": CapturingProvider("sms")}
    dispatch_pending(con, as_of=T0, run_id="r1", content=CONTENT, providers=providers)

    events = [
        sendgrid_event("ada", "delivered"),
        sendgrid_event("ada", "open"),
        sendgrid_event("bob", "bounce", type="bounce", reason="550 5.1.1 user unknown"),
        sendgrid_event("cy", "spamreport"),
        {"event": "delivered", "email": "x@example.com", "sg_message_id": "not ours"},
    ]
    assert sendgrid_post(server, signing_key, events, tamper=True).status_code == 401
    answer = sendgrid_post(server, signing_key, events)
    assert answer.status_code == 200 and answer.json() == {"landed": 4, "ignored": 1}
    # Providers retry: the same report twice is one report.
    assert sendgrid_post(server, signing_key, events).status_code == 200

    postmark = {
        "RecordType": "Bounce",
        "Type": "HardBounce",
        "MessageID": "pm-dee",
        "Email": "dee@example.com",
        "BouncedAt": "2026-01-01T13:00:00Z",
        "Description": "The server was unable to deliver your message",
        "Metadata": {"nudge_delivery_id": "d-dee-email-01", "nudge_user_id": "dee"},
    }
    wrong = requests.post(
        f"{server}/webhooks/postmark", json=postmark, auth=("postmark", "x"), timeout=10
    )
    assert wrong.status_code == 401
    user, password = POSTMARK_CREDENTIALS.split(":")
    ok = requests.post(
        f"{server}/webhooks/postmark", json=postmark, auth=(user, password), timeout=10
    )
    assert ok.status_code == 200 and ok.json()["landed"] == 1

    fields = {
        "MessageSid": "SM1",
        "MessageStatus": "undelivered",
        "ErrorCode": "30006",
        "To": "+15550003e",
    }
    assert twilio_post(server, "eve", fields, token="someone-else").status_code == 401
    assert twilio_post(server, "eve", fields).status_code == 200
    # the collector's transactional sends refuse the dead addresses at once, before any run
    with sqlite3.connect(tmp_path / STORE_NAME) as store:
        dead = sorted(store.execute("select channel, address from suppressed_addresses"))
    assert dead == [
        ("email", "bob@example.com"), ("email", "cy@example.com"),
        ("email", "dee@example.com"), ("sms", "+15550003e"),
    ]  # fmt: skip

    load_new_files(con, tmp_path / "landing" / "events")
    applied = apply_feedback(con, now=T1)
    assert (applied.reports, applied.ledger_rows, applied.suppressed) == (6, 5, 4)
    ledger = dict(
        con.execute(
            "select user_id || '/' || channel, status from nudge.delivery_ledger"
        ).fetchall()
    )
    assert ledger == {
        "ada/email": "opened",
        "bob/email": "bounced",
        "cy/email": "spammed",
        "dee/email": "bounced",
        "eve/email": "sent",
        "eve/sms": "bounced",
    }
    (reason,) = con.execute(
        "select reason from nudge.delivery_ledger where user_id = 'bob'"
    ).fetchone()
    assert "550 5.1.1 user unknown" in reason
    assert sorted(
        con.execute("select channel, address from nudge.suppressed_addresses").fetchall()
    ) == [
        ("email", "bob@example.com"),
        ("email", "cy@example.com"),
        ("email", "dee@example.com"),
        ("sms", "+15550003e"),
    ]
    # Applying again changes nothing.
    assert apply_feedback(con, now=T1) == type(applied)(0, 0, 0)

    # The next sends: a suppressed address is dropped, transactional or not; others go out.
    add_send(con, "bob", transactional=True, at=T1)
    add_send(con, "ada", at=T1)
    dispatch_pending(con, as_of=T1, run_id="r2", content=CONTENT, providers=providers)
    later = dict(
        con.execute(
            "select user_id, status || coalesce(' ' || reason, '') from nudge.delivery_ledger "
            "where as_of = ?",
            [T1],
        ).fetchall()
    )
    assert later["ada"] == "sent"
    assert later["bob"].startswith("dropped suppressed address: bounced")
    assert [m.user_id for m in providers["email"].messages].count("bob") == 1


def test_callbacks_are_refused_while_their_secret_is_not_set(
    server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("NUDGE_SENDGRID_WEBHOOK_PUBLIC_KEY")
    answer = requests.post(f"{server}/webhooks/sendgrid", json=[], timeout=10)
    assert answer.status_code == 403
    assert "NUDGE_SENDGRID_WEBHOOK_PUBLIC_KEY" in answer.json()["error"]
    assert not list((tmp_path / "landing").rglob("*.parquet"))
