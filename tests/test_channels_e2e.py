"""Every channel end to end through the real `nudge run`, against one local HTTP server standing in
for SendGrid, Twilio, FCM (its token endpoint too), a webhook receiver and a Slack hook; and the
sender killed with SIGKILL in the middle of a batch, then run again."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from standardwebhooks.webhooks import Webhook

from tests.http_standin import Reply, Request, StandIn, standin
from tests.test_senders_http import WEBHOOK_SECRET, service_account

FIXTURE = Path(__file__).parent / "fixtures" / "channels"
USERS = ("ada", "bob")


def nudge(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nudge.cli", *args], env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip


def providers_answer(request: Request) -> Reply:
    """Each provider's success answer, by path; the webhook's signature is verified here."""
    if request.path == "/token":
        return Reply(200, {"access_token": "ya29.e2e", "expires_in": 3600})
    if request.path.startswith("/v3/mail/send"):
        return Reply(202, headers={"X-Message-Id": "sg"})
    if request.path.endswith("/Messages.json"):
        return Reply(201, {"sid": "SM" + request.form()["To"][-4:]})
    if request.path.endswith("/messages:send"):
        return Reply(200, {"name": "projects/proj/messages/1"})
    if request.path.startswith("/crm/"):
        Webhook(WEBHOOK_SECRET).verify(request.body, request.headers)
        return Reply(200, {"record": {"id": "crm-" + request.path.rsplit("/", 1)[1]}})
    if request.path == "/slack":
        return Reply(200, "ok")
    return Reply(404, "no such path")


def provider_env(server: StandIn, tmp_path: Path) -> dict[str, str]:
    credentials, _ = service_account(tmp_path, f"{server.url}/token")
    return {
        "NUDGE_EMAIL_PROVIDER": "sendgrid",
        "NUDGE_SENDGRID_API_KEY": "SG.e2e",
        "NUDGE_SENDGRID_BASE_URL": server.url,
        "NUDGE_EMAIL_FROM": "Team <team@brand.example>",
        "NUDGE_SMS_PROVIDER": "twilio",
        "NUDGE_TWILIO_ACCOUNT_SID": "AC1",
        "NUDGE_TWILIO_AUTH_TOKEN": "twilio-token",
        "NUDGE_TWILIO_FROM": "+15550000000",
        "NUDGE_TWILIO_BASE_URL": server.url,
        "NUDGE_PUSH_PROVIDER": "fcm",
        "NUDGE_FCM_PROJECT_ID": "proj",
        "NUDGE_FCM_CREDENTIALS_FILE": str(credentials),
        "NUDGE_FCM_BASE_URL": server.url,
        "NUDGE_WEBHOOK_PROVIDER": "http",
        "NUDGE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "NUDGE_SLACK_PROVIDER": "incoming_webhook",
        "NUDGE_SLACK_WEBHOOK_URL": f"{server.url}/slack",
    }


def identifies(server: StandIn, n: int) -> str:
    return "\n".join(
        json.dumps({
            "type": "identify", "userId": user, "timestamp": "2026-01-01T00:00:00Z",
            "traits": {"plan": "pro", "first_name": user.title(), "email": f"{user}@example.com",
                       "phone": f"+1555000{i:04d}", "crm_hook_url": f"{server.url}/crm/{user}"},
        })
        for i, user in enumerate(USERS[:n] if n <= len(USERS) else [f"u{i}" for i in range(n)])
    )  # fmt: skip


def devices(users: tuple[str, ...]) -> str:
    """A phone registered per user, as the Track API's device call lands it."""
    return "\n".join(
        json.dumps({
            "type": "track", "userId": user, "event": "Device Created or Updated",
            "timestamp": "2026-01-01T00:00:00Z",
            "properties": {"device_id": f"{user}-phone", "platform": "android",
                           "last_used": "2026-01-01T00:00:00Z"},
        })
        for user in users
    )  # fmt: skip


@pytest.fixture
def server() -> Iterator[StandIn]:
    with standin(providers_answer) as running:
        yield running


@pytest.mark.slow
def test_a_journey_sends_on_all_six_channels_through_nudge_run(server: StandIn, tmp_path: Path):
    home = tmp_path / "home"
    env = {**os.environ, "NUDGE_HOME": str(home), "NUDGE_CONTENT": str(FIXTURE),
           **provider_env(server, tmp_path)}  # fmt: skip
    events = tmp_path / "events.ndjson"
    events.write_text(identifies(server, 2) + "\n" + devices(("ada", "bob")))
    assert nudge(env, "ingest", str(events)).returncode == 0

    enrol = nudge(env, "run", "--as-of", "2026-01-01T00:01:00Z")
    assert enrol.returncode == 0, enrol.stdout + enrol.stderr
    assert server.requests == []  # everyone waits an hour first

    send = nudge(env, "run", "--as-of", "2026-01-01T01:02:00Z")
    assert send.returncode == 0, send.stdout + send.stderr

    by_path = Counter(r.path for r in server.requests)
    assert by_path == {
        "/v3/mail/send": 2, "/2010-04-01/Accounts/AC1/Messages.json": 2, "/token": 1,
        "/v1/projects/proj/messages:send": 2, "/crm/ada": 1, "/crm/bob": 1, "/slack": 2,
    }  # fmt: skip
    mail = [r.json() for r in server.requests if r.path == "/v3/mail/send"]
    assert sorted(m["subject"] for m in mail) == ["Welcome, Ada", "Welcome, Bob"]
    sms = sorted(r.form()["Body"] for r in server.requests if r.path.endswith("Messages.json"))
    assert sms == ["Hi Ada, reply STOP to opt out", "Hi Bob, reply STOP to opt out"]
    push = sorted(r.json()["message"]["token"] for r in server.requests
                  if r.path.endswith("messages:send"))  # fmt: skip
    assert push == ["ada-phone", "bob-phone"]
    crm = [r.json() for r in server.requests if r.path.startswith("/crm/")]
    assert sorted(c["id"] for c in crm) == ["ada", "bob"]
    slack = sorted(r.json()["text"] for r in server.requests if r.path == "/slack")
    assert slack == ["Ada is pro now", "Bob is pro now"]
    with sqlite3.connect(home / "inbox.sqlite3") as inbox:
        tips = inbox.execute("select user_id, content from inbox_messages order by 1").fetchall()
    assert [(u, json.loads(c)["body"]) for u, c in tips] == [
        ("ada", "Try the CLI, Ada"), ("bob", "Try the CLI, Bob"),
    ]  # fmt: skip
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        statuses = con.execute(
            "select channel, status, count(*) from nudge.delivery_ledger group by all order by all"
        ).fetchall()
    channels = ("email", "in_app", "push", "slack", "sms", "webhook")
    assert statuses == [(c, "sent", 2) for c in channels]

    # the webhook's answer was landed as an identify, stamped when it came back (now): the next
    # run from then on makes it a trait
    now = datetime.now(UTC) + timedelta(minutes=1)
    later = nudge(env, "run", "--as-of", now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert later.returncode == 0, later.stdout + later.stderr
    profile = json.loads(nudge(env, "profile", "ada", "--json").stdout)
    assert profile["traits"]["crm_id"] == "crm-ada"
    assert len(server.requests) == 11  # nothing sent twice


BROADCAST = """
segments:
  - {name: everyone, condition: {attribute: {name: plan, eq: pro}}}
templates:
  - {name: news, channel: email, subject: "News", html: "<p>News</p>"}
journeys:
  - name: news
    trigger: {broadcast: {segment: everyone}}
    steps: [{id: news, send: {channel: email, template: news}}]
"""
BROADCAST_USERS = 300
CONCURRENCY = 8


@pytest.mark.slow
def test_kill_9_mid_batch_then_rerun_sends_each_message_once(tmp_path: Path):
    def slow_sendgrid(request: Request) -> Reply:
        return Reply(202, delay=0.02)

    content = tmp_path / "content"
    content.mkdir()
    (content / "news.yml").write_text(BROADCAST)
    with standin(slow_sendgrid) as server:
        home = tmp_path / "home"
        env = {
            **os.environ, "NUDGE_HOME": str(home), "NUDGE_CONTENT": str(content),
            "NUDGE_EMAIL_PROVIDER": "sendgrid", "NUDGE_SENDGRID_API_KEY": "SG.k",
            "NUDGE_SENDGRID_BASE_URL": server.url, "NUDGE_SENDGRID_CONCURRENCY": str(CONCURRENCY),
        }  # fmt: skip
        events = tmp_path / "events.ndjson"
        events.write_text(identifies(server, BROADCAST_USERS))
        assert nudge(env, "ingest", str(events)).returncode == 0

        run = subprocess.Popen(
            [sys.executable, "-m", "nudge.cli", "run", "--as-of", "2026-01-01T00:01Z"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 180
            while len(server.requests) < 50 and run.poll() is None:
                assert time.monotonic() < deadline, "the run sent nothing for 3 minutes"
                time.sleep(0.01)
        finally:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
        assert 50 <= len(server.requests) < BROADCAST_USERS, "the kill missed the batch"

        rerun = nudge(env, "run", "--as-of", "2026-01-01T00:02Z")
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        received = Counter(r.json()["custom_args"]["nudge_delivery_id"] for r in server.requests)

    assert max(received.values()) == 1  # no message reached the provider twice
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute(
            "select delivery_id, status, reason from nudge.delivery_ledger"
        ).fetchall()
    assert len(rows) == BROADCAST_USERS
    sent = {d for d, status, _ in rows if status == "sent"}
    unknown = {d: reason for d, status, reason in rows if status != "sent"}
    assert len(unknown) <= CONCURRENCY  # at most the messages in flight at the kill
    assert all(reason.startswith("outcome unknown") for reason in unknown.values())
    assert sent <= set(received) <= sent | set(unknown)  # the ledger agrees with the provider
