"""HTTP providers against real local servers: every request shape checked at the server, and
servers that answer slowly, with 5xx, with 429 and Retry-After, refuse, or hang."""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import jwt as google_jwt
from standardwebhooks.webhooks import Webhook

from nudge.core.dsl.spec import Content, Origin, Template
from nudge.devtools.free_port import free_port
from senders.channels.fcm import FcmPushProvider, FcmSettings
from senders.channels.in_app import InboxProvider, InboxStore
from senders.channels.postmark import PostmarkEmailProvider, PostmarkSettings
from senders.channels.sendgrid import SendgridEmailProvider, SendgridSettings
from senders.channels.slack import SlackProvider, SlackSettings
from senders.channels.twilio import TwilioSettings, TwilioSmsProvider
from senders.channels.webhook import WebhookProvider, WebhookSettings
from senders.dispatch import dispatch_pending
from senders.handover_journal import journal_path
from senders.settings import DispatchSettings
from tests.http_standin import Reply, Request, StandIn, always, in_turn, standin
from tests.test_senders_dispatch import T0, add_user, enqueue

FAST = DispatchSettings(retry_pause=timedelta(milliseconds=5))
ORIGIN = Origin("test.yml", "templates")
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
TEMPLATES = (
    Template("welcome", "email", ORIGIN, {
        "subject": "Welcome, {{ user.first_name }}", "preheader": "Three things",
        "html": "<p>Hi {{ user.first_name }}</p>",
    }),
    Template("sms_hi", "sms", ORIGIN, {"body": "{{ user.first_name }}, your code is ready 🎉"}),
    Template("push_hi", "push", ORIGIN,
             {"title": "Hi {{ user.first_name }}", "body": "Finish", "data": {"screen": "home"}}),
    Template("push_big", "push", ORIGIN, {"title": "Big", "body": "{{ 'x' * 5000 }}"}),
    Template("hook", "webhook", ORIGIN, {
        "method": "PUT", "url": "{{ event.url | default('http://127.0.0.1:9/none') }}",
        "headers": {"X-Team": "growth"}, "json": {"id": "{{ user.id }}", "step": "{{ step }}"},
        "response_traits": {"crm_id": "record.id", "crm_tier": "record.tier"},
    }),
    Template("alert", "slack", ORIGIN, {"text": "{{ user.first_name }} upgraded"}),
    Template("tip", "in_app", ORIGIN, {"title": "Tip", "body": "Try the CLI"}),
)  # fmt: skip
CONTENT = Content(templates=TEMPLATES)


@pytest.fixture
def con(sender_warehouse: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    return sender_warehouse


def run(con, providers, *, as_of=T0, settings=FAST):
    return dispatch_pending(
        con, as_of=as_of, run_id=f"run-{as_of:%d%H%M}", content=CONTENT, providers=providers,
        settings=settings,
    )  # fmt: skip


def ledger(con) -> dict[str, tuple]:
    rows = con.execute(
        """select idempotency_key, status, permanent, reason, provider_message_id, details
           from nudge.delivery_ledger"""
    ).fetchall()
    return {k: (s, p, r, m, json.loads(d) if d else None) for k, s, p, r, m, d in rows}


def users(con, n: int = 1, **traits) -> list[str]:
    ids = [f"u{i}" for i in range(n)]
    for user in ids:
        add_user(con, user, email=f"{user}@example.com", phone="+15551230000", first_name="Ada",
                 **traits)  # fmt: skip
    return ids


def send_each(con, ids, template: str, channel: str) -> None:
    for user in ids:
        enqueue(con, f"{channel}-{user}", user, template=template, channel=channel)


def sendgrid(server: StandIn, **limits) -> SendgridEmailProvider:
    return SendgridEmailProvider(SendgridSettings(
        api_key="SG.key", base_url=server.url, sender="Team <team@brand.example>",
        **{"timeout": 2.0, **limits},
    ))  # fmt: skip


# --- request shapes ----------------------------------------------------------------------------


def test_sendgrid_gets_its_mail_send_shape(con):
    send_each(con, users(con), "welcome", "email")
    with standin(always(Reply(202, headers={"X-Message-Id": "sg-1"}))) as server:
        summary = run(con, {"email": sendgrid(server)})

    assert summary.total("sent") == 1
    [request] = server.requests
    assert (request.method, request.path) == ("POST", "/v3/mail/send")
    assert request.headers["authorization"] == "Bearer SG.key"
    body = request.json()
    assert body["personalizations"] == [{"to": [{"email": "u0@example.com"}]}]
    assert body["from"] == {"email": "team@brand.example", "name": "Team"}
    assert body["subject"] == "Welcome, Ada"
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert "Three things" in body["content"][1]["value"]  # the preheader, hidden in the html
    assert body["headers"]["List-Unsubscribe"].startswith("<https://nudge.test/u/")
    assert body["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert body["custom_args"] == {"nudge_delivery_id": "d-email-u0", "nudge_user_id": "u0"}
    status, _, _, provider_message_id, _ = ledger(con)["email-u0"]
    assert (status, provider_message_id) == ("sent", "sg-1")


def test_postmark_shape_and_inactive_recipient_is_permanent(con):
    send_each(con, users(con, 2), "welcome", "email")
    answers = in_turn(
        Reply(200, {"ErrorCode": 0, "MessageID": "pm-1"}),
        Reply(422, {"ErrorCode": 406, "Message": "inactive recipient"}),
    )
    with standin(answers) as server:
        provider = PostmarkEmailProvider(PostmarkSettings(
            server_token="pm-token", base_url=server.url, sender="team@brand.example",
            concurrency=1,
        ))  # fmt: skip
        run(con, {"email": provider})

    first = server.requests[0]
    assert first.path == "/email" and first.headers["x-postmark-server-token"] == "pm-token"
    body = first.json()
    assert (body["From"], body["To"], body["Subject"]) == (
        "team@brand.example", "u0@example.com", "Welcome, Ada",
    )  # fmt: skip
    assert body["MessageStream"] == "outbound" and "Hi Ada" in body["HtmlBody"]
    assert {h["Name"] for h in body["Headers"]} == {"List-Unsubscribe", "List-Unsubscribe-Post"}
    rows = ledger(con)
    assert rows["email-u0"][0] == "sent" and rows["email-u0"][3] == "pm-1"
    assert rows["email-u1"][:2] == ("failed", True) and "406" in rows["email-u1"][2]
    assert len(server.requests) == 2  # the permanent failure was not retried


def twilio(server: StandIn) -> TwilioSmsProvider:
    return TwilioSmsProvider(TwilioSettings(
        account_sid="AC123", auth_token="secret", sender="+15550001111", base_url=server.url,
        concurrency=1,  # the answers come in turn: keep the messages in order
    ))  # fmt: skip


def test_twilio_is_form_encoded_with_basic_auth_and_counts_segments(con):
    send_each(con, users(con, 2), "sms_hi", "sms")
    answers = in_turn(
        Reply(201, {"sid": "SM1"}),
        Reply(400, {"code": 21610, "message": "Attempt to send to unsubscribed recipient"}),
    )
    with standin(answers) as server:
        run(con, {"sms": twilio(server)})

    first = server.requests[0]
    assert first.path == "/2010-04-01/Accounts/AC123/Messages.json"
    assert first.headers["content-type"] == "application/x-www-form-urlencoded"
    assert first.headers["authorization"] == "Basic " + base64.b64encode(b"AC123:secret").decode()
    assert first.form() == {
        "To": "+15551230000", "From": "+15550001111", "Body": "Ada, your code is ready 🎉",
        # Twilio reports delivery to the collector, naming the message (NUDGE_PUBLIC_URL).
        "StatusCallback": "https://nudge.test/webhooks/twilio?nudge_delivery_id=d-sms-u0"
                          "&nudge_user_id=u0",
    }  # fmt: skip
    rows = ledger(con)
    assert rows["sms-u0"][0] == "sent" and rows["sms-u0"][3] == "SM1"
    assert rows["sms-u0"][4] == {"encoding": "UCS-2", "segments": 1}
    assert rows["sms-u1"][:2] == ("failed", True) and "21610" in rows["sms-u1"][2]
    assert len(server.requests) == 2


def service_account(tmp_path: Path, token_uri: str) -> tuple[Path, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()  # fmt: skip
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    path = tmp_path / "service-account.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "proj", "private_key_id": "kid",
        "private_key": pem, "client_email": "nudge@proj.iam.gserviceaccount.com",
        "token_uri": token_uri,
    }))  # fmt: skip
    return path, public


def fcm_answer(public_key: bytes, grants: list[dict]) -> Callable[[Request], Reply]:
    """The token endpoint checks the signed grant; the send endpoint says UNREGISTERED for
    tokens starting with ``gone``."""

    def answer(request: Request) -> Reply:
        if request.path == "/token":
            form = request.form()
            # google-auth signs for Google's token audience, whatever the token_uri it posts to
            grants.append(google_jwt.decode(form["assertion"], certs=public_key.decode(),
                                            audience=GOOGLE_TOKEN_AUDIENCE))  # fmt: skip
            assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
            return Reply(200, {"access_token": "ya29.token", "expires_in": 3600})
        token = request.json()["message"]["token"]
        if token.startswith("gone"):
            return Reply(404, {"error": {"code": 404, "status": "NOT_FOUND", "details": [
                {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                 "errorCode": "UNREGISTERED"}]}})  # fmt: skip
        return Reply(200, {"name": f"projects/proj/messages/{token}"})

    return answer


def test_fcm_gets_a_token_from_token_uri_sends_to_every_device_and_removes_unregistered(
    con, tmp_path
):
    con.execute(
        """create table marts.dim_user_devices (user_id varchar, device_id varchar, last_used_at timestamp);
           insert into marts.dim_user_devices values
             ('u0', 'phone-token', '2025-06-01'), ('u0', 'gone-tablet', '2025-01-01'),
             ('u1', 'gone-only', '2025-01-01')"""
    )
    ids = users(con, 2)
    send_each(con, ids, "push_hi", "push")
    enqueue(con, "push-big", "u0", template="push_big", channel="push")
    grants: list[dict] = []
    landing = tmp_path / "landing"
    with standin(always(Reply(500))) as server:
        path, public = service_account(tmp_path, f"{server.url}/token")
        server.answer = fcm_answer(public, grants)
        settings = FcmSettings(project_id="proj", credentials_file=str(path), base_url=server.url)
        run(con, {"push": FcmPushProvider(settings, landing)})

    assert len(grants) == 1  # one token, cached for every message
    assert grants[0]["scope"] == "https://www.googleapis.com/auth/firebase.messaging"
    sends = [r for r in server.requests if r.path != "/token"]
    assert {r.path for r in sends} == {"/v1/projects/proj/messages:send"}
    assert all(r.headers["authorization"] == "Bearer ya29.token" for r in sends)
    phone = next(
        r.json()["message"] for r in sends if r.json()["message"]["token"] == "phone-token"
    )
    assert phone["notification"] == {"title": "Hi Ada", "body": "Finish"}
    assert phone["data"] == {"screen": "home", "nudge_delivery_id": "d-push-u0"}
    assert sorted(r.json()["message"]["token"] for r in sends) == [
        "gone-only", "gone-tablet", "phone-token",
    ]  # fmt: skip
    rows = ledger(con)
    assert rows["push-u0"][0] == "sent"
    assert rows["push-u0"][4] == {"devices": 2, "sent": 1, "removed": 1}
    assert rows["push-u1"][:2] == ("failed", True)
    assert rows["push-big"][:2] == ("failed", True) and "4096-byte limit" in rows["push-big"][2]
    landed = [
        row for f in sorted(landing.rglob("*.parquet")) for row in pq.read_table(f).to_pylist()
    ]
    removed = sorted((r["user_id"], json.loads(r["properties"])["device_token"]) for r in landed)
    assert removed == [("u0", "gone-tablet"), ("u1", "gone-only")]
    assert {r["event"] for r in landed} == {"Device Deleted"}


def enqueue_hook(con, url: str) -> None:
    """Ada (u0) and an outbox row of the ``hook`` template sending to ``url``."""
    add_user(con, "u0", first_name="Ada")
    con.execute(
        """insert into nudge.outbox (idempotency_key, delivery_id, run_id, as_of, entry_id,
               journey, step, user_id, channel, template, topic, transactional, holdout,
               event_properties, created_at)
           values ('hook-u0', 'd-hook-u0', 'r0', ?, 'e', 'onboarding', 'crm', 'u0', 'webhook',
                   'hook', null, false, false, ?, ?)""",
        [T0, json.dumps({"url": url}), T0],
    )


def test_webhook_is_signed_per_standard_webhooks_and_maps_the_answer_into_traits(con, tmp_path):
    verified: list[dict] = []

    def answer(request: Request) -> Reply:
        verified.append(Webhook(WEBHOOK_SECRET).verify(request.body, request.headers))
        return Reply(200, {"record": {"id": "crm-7", "tier": "gold"}})

    landing = tmp_path / "landing"
    with standin(answer) as server:
        enqueue_hook(con, f"{server.url}/crm")
        provider = WebhookProvider(WebhookSettings(secret=WEBHOOK_SECRET), landing)
        run(con, {"webhook": provider})

    [request] = server.requests
    assert (request.method, request.path) == ("PUT", "/crm")
    assert request.headers["x-team"] == "growth"
    assert request.headers["webhook-id"] == "d-hook-u0"
    assert verified == [{"id": "u0", "step": "crm"}]
    assert ledger(con)["hook-u0"][0] == "sent"
    [identify] = [r for f in landing.rglob("*.parquet") for r in pq.read_table(f).to_pylist()]
    assert identify["type"] == "identify" and identify["user_id"] == "u0"
    assert json.loads(identify["traits"]) == {"crm_id": "crm-7", "crm_tier": "gold"}


def test_a_webhook_answer_that_cannot_be_landed_leaves_the_send_sent_and_made_once(con, tmp_path):
    # The answer maps a trait over the 32 KB message limit: the identify is refused, the
    # message was delivered all the same.
    answer = Reply(200, {"record": {"id": "x" * 40_000, "tier": "gold"}})
    landing = tmp_path / "landing"
    with standin(lambda request: answer) as server:
        enqueue_hook(con, f"{server.url}/crm")
        provider = WebhookProvider(WebhookSettings(secret=WEBHOOK_SECRET), landing)
        run(con, {"webhook": provider})
        run(con, {"webhook": provider}, as_of=T0 + timedelta(hours=1))

    assert len(server.requests) == 1
    status, _, _, _, details = ledger(con)["hook-u0"]
    assert status == "sent"
    assert "could not land the identify delivery d-hook-u0 taught" in details["traits_not_landed"]
    assert not list(landing.rglob("*.parquet"))


def test_slack_posts_text_to_the_default_hook_and_a_dead_hook_is_permanent(con):
    send_each(con, users(con, 2), "alert", "slack")
    answers = in_turn(Reply(200, "ok"), Reply(404, "no_service"))
    with standin(answers) as server:
        provider = SlackProvider(SlackSettings(webhook_url=f"{server.url}/services/T/B/X"))
        run(con, {"slack": provider})

    assert [r.json() for r in server.requests] == [{"text": "Ada upgraded"}] * 2
    assert server.requests[0].path == "/services/T/B/X"
    rows = ledger(con)
    assert rows["slack-u0"][0] == "sent"
    assert rows["slack-u1"][:2] == ("failed", True) and "no_service" in rows["slack-u1"][2]


def test_a_provider_ignores_netrc_credentials_and_follows_the_environments_proxies(
    con, tmp_path, monkeypatch
):
    # requests would add ~/.netrc's password for the host as Basic auth: never to a provider
    netrc = tmp_path / "netrc"
    netrc.write_text(
        "machine hooks.slack.test login someone password not-for-providers\n"
        "machine 127.0.0.1 login someone password not-for-providers\n"
    )
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.delenv("no_proxy", raising=False)
    [first, second] = users(con, 2)
    with standin(always(Reply(200, "ok"))) as proxy, standin(always(Reply(200, "ok"))) as direct:
        # through the proxy of HTTP_PROXY: a host that does not resolve reaches it all the same
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "localhost")
        send_each(con, [first], "alert", "slack")
        via_proxy = SlackProvider(SlackSettings(webhook_url="http://hooks.slack.test/services/T"))
        assert run(con, {"slack": via_proxy}).total("sent") == 1
        # a host NO_PROXY names goes direct
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        send_each(con, [second], "alert", "slack")
        around = SlackProvider(SlackSettings(webhook_url=f"{direct.url}/services/T/B/X"))
        assert run(con, {"slack": around}, as_of=T0 + timedelta(minutes=1)).total("sent") == 1

    [proxied] = proxy.requests
    [sent] = direct.requests
    assert proxied.path.endswith("/services/T") and sent.path == "/services/T/B/X"
    assert "authorization" not in proxied.headers and "authorization" not in sent.headers


def test_in_app_messages_land_in_an_inbox_readable_while_the_sender_writes(con, tmp_path):
    send_each(con, users(con, 2), "tip", "in_app")
    path = tmp_path / "inbox.sqlite3"
    provider = InboxProvider(path)
    run(con, {"in_app": provider})
    reader = InboxStore(path)  # another connection, as the collector will have
    [message] = reader.messages("u0")
    assert message.content == {"title": "Tip", "body": "Try the CLI"}
    assert reader.mark_read("u0", message.delivery_id)
    assert reader.messages("u0")[0].read_at is not None
    assert reader.dismiss("u0", message.delivery_id)
    assert reader.messages("u0") == [] and len(reader.messages("u1")) == 1
    assert not reader.mark_read("u1", message.delivery_id)  # someone else's message
    reader.close()


# --- servers that misbehave -------------------------------------------------------------------


def test_a_5xx_is_retried_and_the_message_sent_once(con):
    send_each(con, users(con), "welcome", "email")
    with standin(in_turn(Reply(503, "busy"), Reply(202))) as server:
        summary = run(con, {"email": sendgrid(server)})
    assert summary.total("sent") == 1 and len(server.requests) == 2


def test_429_with_a_long_retry_after_is_left_for_a_later_run_that_sends_it(con):
    send_each(con, users(con), "welcome", "email")
    with standin(in_turn(Reply(429, "slow down", {"Retry-After": "120"}), Reply(202))) as server:
        first = run(con, {"email": sendgrid(server)})
        next_at = con.execute("select next_attempt_at from nudge.delivery_ledger").fetchone()[0]
        too_early = run(con, {"email": sendgrid(server)}, as_of=T0 + timedelta(seconds=60))
        later = run(con, {"email": sendgrid(server)}, as_of=next_at + timedelta(seconds=1))

    assert first.total("failed") == 1 and next_at >= T0 + timedelta(seconds=120)
    assert too_early.total("sent") == 0
    assert later.total("sent") == 1 and len(server.requests) == 2


def test_a_short_retry_after_is_honoured_within_the_run(con):
    send_each(con, users(con), "welcome", "email")
    with standin(in_turn(Reply(429, "", {"Retry-After": "1"}), Reply(202))) as server:
        summary = run(con, {"email": sendgrid(server)})
    assert summary.total("sent") == 1 and len(server.requests) == 2


def test_a_slow_server_within_the_timeout_delivers(con):
    send_each(con, users(con, 3), "welcome", "email")
    with standin(always(Reply(202, delay=0.3))) as server:
        summary = run(con, {"email": sendgrid(server, timeout=5.0)})
    assert summary.total("sent") == 3 and len(server.requests) == 3


def test_a_hanging_provider_makes_one_unknown_outcome_and_stops_the_channel(con):
    send_each(con, users(con, 5), "welcome", "email")
    with standin(always(Reply(hang=True))) as server:
        summary = run(con, {"email": sendgrid(server, timeout=0.5, concurrency=1)})

    assert len(server.requests) == 1  # the breaker opened on the first timeout
    statuses = ledger(con)
    assert [v[:2] for v in statuses.values()] == [("failed", True)]
    assert next(iter(statuses.values()))[2].startswith("outcome unknown")
    assert summary.total("pending") == 4 and "timed out" in summary.stopped["email"]


def test_a_hanging_webhook_is_retried_later_because_receivers_deduplicate(con, tmp_path):
    with standin(always(Reply(hang=True))) as server:
        add_user(con, "u0")
        con.execute(
            """insert into nudge.outbox (idempotency_key, delivery_id, run_id, as_of, entry_id,
                   journey, step, user_id, channel, template, topic, transactional, holdout,
                   event_properties, created_at)
               values ('hook-u0', 'd-hook-u0', 'r0', ?, 'e', 'onboarding', 'crm', 'u0', 'webhook',
                       'hook', null, false, false, ?, ?)""",
            [T0, json.dumps({"url": f"{server.url}/crm"}), T0],
        )
        provider = WebhookProvider(WebhookSettings(secret=WEBHOOK_SECRET, timeout=0.5), tmp_path)
        summary = run(con, {"webhook": provider})

    # the breaker opened on the timeout: the message is pending again, not unknown
    assert summary.total("pending") == 1 and ledger(con) == {}


def test_a_refused_port_stops_the_channel_and_leaves_everything_pending(con):
    send_each(con, users(con, 6), "welcome", "email")
    dead = SendgridEmailProvider(SendgridSettings(
        api_key="k", base_url=f"http://127.0.0.1:{free_port('127.0.0.1')}", timeout=1.0,
    ))  # fmt: skip
    summary = run(con, {"email": dead})
    assert summary.total("pending") == 6 and ledger(con) == {}
    assert "connections failed in a row" in summary.stopped["email"]


def test_concurrent_sends_reach_the_server_together_and_each_once(con):
    ids = users(con, 40)
    send_each(con, ids, "welcome", "email")
    with standin(always(Reply(202, delay=0.05))) as server:
        summary = run(con, {"email": sendgrid(server, concurrency=8)})

    assert summary.total("sent") == 40
    delivered = [r.json()["custom_args"]["nudge_delivery_id"] for r in server.requests]
    assert sorted(delivered) == sorted(f"d-email-{u}" for u in ids)
    assert 1 < server.most_in_flight <= 8


def test_the_next_batch_takes_free_slots_while_the_last_one_is_in_flight(con):
    ids = users(con, 24)
    send_each(con, ids, "welcome", "email")
    with standin(always(Reply(202, delay=0.5))) as server:
        summary = dispatch_pending(
            con, as_of=T0, run_id="run-batches", content=CONTENT, batch_size=4, settings=FAST,
            providers={"email": sendgrid(server, concurrency=8)},
        )  # fmt: skip

    assert summary.total("sent") == 24 and len(server.requests) == 24
    # batches of 4 overlap in the window of 8: the slots do not drain at the end of each batch
    assert 4 < server.most_in_flight <= 8
    # the journal was folded while messages were in flight: their outcomes still reached the ledger
    assert {status for status, *_ in ledger(con).values()} == {"sent"}
    with sqlite3.connect(journal_path(con)) as journal:
        assert journal.execute("select count(*) from handovers").fetchone() == (0,)


# --- every provider shape against the same misbehaviour -----------------------------------------


@dataclass(frozen=True)
class Shape:
    channel: str
    template: str
    success: Reply
    open: Callable[[StandIn, Path, float], Any]
    deduplicated: bool = False  # a request without an answer may be sent again


def _webhook_provider(server: StandIn, tmp_path: Path, timeout: float) -> WebhookProvider:
    settings = WebhookSettings(secret=WEBHOOK_SECRET, timeout=timeout, concurrency=1)
    return WebhookProvider(settings, tmp_path)


SHAPES = {
    "sendgrid": Shape("email", "welcome", Reply(202), lambda s, _t, timeout: sendgrid(
        s, timeout=timeout, concurrency=1)),
    "postmark": Shape("email", "welcome", Reply(200, {"ErrorCode": 0, "MessageID": "m"}),
                      lambda s, _t, timeout: PostmarkEmailProvider(PostmarkSettings(
                          server_token="t", base_url=s.url, timeout=timeout, concurrency=1))),
    "twilio": Shape("sms", "sms_hi", Reply(201, {"sid": "SM"}),
                    lambda s, _t, timeout: TwilioSmsProvider(TwilioSettings(
                        account_sid="AC", auth_token="t", sender="+1555", base_url=s.url,
                        timeout=timeout, concurrency=1))),
    "fcm": Shape("push", "push_hi", Reply(200, {"name": "projects/proj/messages/1"}),
                 lambda s, t, timeout: FcmPushProvider(FcmSettings(
                     project_id="proj", credentials_file=str(service_account(t, f"{s.url}/token")[0]),
                     base_url=s.url, timeout=timeout, concurrency=1), t / "landing")),
    "webhook": Shape("webhook", "hook", Reply(200, {}), _webhook_provider, deduplicated=True),
    "slack": Shape("slack", "alert", Reply(200, "ok"), lambda s, _t, timeout: SlackProvider(
        SlackSettings(webhook_url=f"{s.url}/hook", timeout=timeout, rate_limit=1000.0))),
}  # fmt: skip


def _enqueue_shape(con, shape: Shape, server: StandIn, n: int) -> None:
    con.execute(
        """create table if not exists marts.dim_user_devices
               (user_id varchar, device_id varchar, last_used_at timestamp)"""
    )
    for user in users(con, n):
        con.execute("insert into marts.dim_user_devices values (?, ?, null)", [user, f"tok-{user}"])
        con.execute(
            """insert into nudge.outbox (idempotency_key, delivery_id, run_id, as_of, entry_id,
                   journey, step, user_id, channel, template, topic, transactional, holdout,
                   event_properties, created_at)
               values (?, ?, 'r0', ?, ?, 'onboarding', 'step', ?, ?, ?, null, false, false, ?, ?)""",
            [f"{shape.channel}-{user}", f"d-{user}", T0, f"e-{user}", user, shape.channel,
             shape.template, json.dumps({"url": f"{server.url}/hook"}), T0],
        )  # fmt: skip


def _then(first: Reply, shape: Shape) -> Callable[[Request], Reply]:
    """The token endpoint always answers; the first send gets ``first``, later ones success."""
    sends: list[Request] = []

    def answer(request: Request) -> Reply:
        if request.path == "/token":
            return Reply(200, {"access_token": "ya29", "expires_in": 3600})
        sends.append(request)
        return first if len(sends) == 1 else shape.success

    return answer


def _sends(server: StandIn) -> list[Request]:
    return [r for r in server.requests if r.path != "/token"]


@pytest.mark.parametrize("name", SHAPES)
@pytest.mark.parametrize(
    "first",
    [Reply(503, "busy"), Reply(429, "slow down", {"Retry-After": "1"}), Reply(500, delay=0.3)],
    ids=["5xx", "429-retry-after", "slow-5xx"],
)
def test_every_provider_retries_a_transient_answer_and_sends_once(con, tmp_path, name, first):
    shape = SHAPES[name]
    with standin(always(Reply(500))) as server:
        server.answer = _then(first, shape)
        _enqueue_shape(con, shape, server, 2)
        summary = run(con, {shape.channel: shape.open(server, tmp_path, 5.0)})

    assert summary.total("sent") == 2
    assert len(_sends(server)) == 3  # one transient failure, then each message once


@pytest.mark.parametrize("name", SHAPES)
def test_every_provider_stops_on_a_hanging_server(con, tmp_path, name):
    shape = SHAPES[name]
    with standin(always(Reply(500))) as server:
        server.answer = _then(Reply(hang=True), shape)
        _enqueue_shape(con, shape, server, 3)
        summary = run(con, {shape.channel: shape.open(server, tmp_path, 0.5)})

    assert len(_sends(server)) == 1  # the breaker opened on the first timeout
    rows = ledger(con)
    if shape.deduplicated:  # sent again later: nothing recorded, all pending
        assert rows == {} and summary.total("pending") == 3
    else:  # the hung message's outcome is unknown, never resent; the others wait
        assert [r[:2] for r in rows.values()] == [("failed", True)]
        assert next(iter(rows.values()))[2].startswith("outcome unknown")
        assert summary.total("pending") == 2
