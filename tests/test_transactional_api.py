"""The transactional API (``POST /v1/send/{channel}``) of the real ``nudge serve``.

Email goes to a real local SMTP server (``nudge.devtools.smtp_sink``) or to a local HTTP server
standing in for SendGrid; requests come from Customer.io's own client library where it can say
what the test needs, else from ``requests`` (the Idempotency-Key header). A pipeline run
(``nudge run``) then finds every transactional send in ``nudge.delivery_ledger`` exactly once.
"""

from __future__ import annotations

import contextlib
import email
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import customerio
import duckdb
import pytest
import requests

from nudge.core.dsl.spec import FrequencyCap, Policies
from nudge.core.warehouse.connection import warehouse_file
from nudge.devtools.smtp_sink import SmtpSink
from senders.capture import CapturingProvider
from senders.settings import DispatchSettings
from senders.transactional import (
    STORE_NAME,
    Refusal,
    SendRequest,
    TransactionalSender,
    TransactionalStore,
    copy_into_ledger,
    mirror_suppressed_addresses,
    store_path,
)
from tests.conftest import COLLECTOR_ENV, CollectorProcess
from tests.http_standin import Reply, Request, StandIn, standin
from tests.test_senders_dispatch import T0, add_user, enqueue, ledger, run
from tests.test_senders_dispatch import content as dispatch_content

APP_KEY = "app-key-for-tests"
TEMPLATES = """
templates:
  - name: password_reset
    channel: email
    subject: "Reset your password, {{ event.name }}"
    html: "<p>Hi {{ event.name }}, <a href='{{ event.link }}'>reset it</a>.</p>"
  - {name: login_code, channel: sms, body: "Your code is {{ event.code }}"}
  - {name: receipt, channel: in_app, title: "Receipt", body: "Order {{ event.order }} is paid"}
"""
RESET = {
    "transactional_message_id": "password_reset",
    "identifiers": {"id": "ada"},
    "to": "ada@example.com",
    "message_data": {"name": "Ada", "link": "https://app.example/reset/1"},
}


def write_content(root: Path) -> Path:
    content = root / "content"
    content.mkdir(parents=True, exist_ok=True)
    (content / "definitions.yml").write_text(TEMPLATES)
    return content


def post(server: CollectorProcess, body: object, key: str | None = None, channel: str = "email"):
    headers = {"Authorization": f"Bearer {APP_KEY}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return requests.post(f"{server.url}/v1/send/{channel}", json=body, headers=headers, timeout=30)


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[SmtpSink]:
    with SmtpSink("127.0.0.1", 0, tmp_path / "maildir") as running:
        yield running


def smtp_env(sink: SmtpSink) -> dict[str, str]:
    return {
        **COLLECTOR_ENV,
        "NUDGE_APP_API_KEYS": f"other-key,{APP_KEY}",
        "NUDGE_EMAIL_PROVIDER": "smtp",
        "NUDGE_SMTP_HOST": "127.0.0.1",
        "NUDGE_SMTP_PORT": str(sink.port),
        "NUDGE_EMAIL_FROM": "Team <team@brand.example>",
    }


@pytest.fixture
def serving(tmp_path: Path, sink: SmtpSink) -> Iterator[CollectorProcess]:
    server = CollectorProcess(tmp_path / "home", write_content(tmp_path), smtp_env(sink))
    server.start()
    try:
        yield server
    finally:
        if server.process is not None:
            output = server.stop()
            assert "Traceback" not in output, output


def ledger_rows(home: Path) -> list[tuple]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(
            """select delivery_id, journey, template, channel, status, provider, address
               from nudge.delivery_ledger order by delivery_id"""
        ).fetchall()


@pytest.mark.slow
def test_send_repeat_conflict_concurrency_suppression_then_a_run_records_each_once(
    serving: CollectorProcess, sink: SmtpSink, tmp_path: Path
) -> None:
    # Customer.io's own client, pointed at the collector; its session carries the key header
    client = customerio.APIClient(APP_KEY, url=serving.url)
    client.http.headers["Idempotency-Key"] = "reset-ada-1"
    answer = client.send_email(customerio.SendEmailRequest(**RESET))
    assert set(answer) == {"delivery_id", "queued_at"}
    assert abs(answer["queued_at"] - time.time()) < 300  # unix seconds, whatever the local zone
    [first] = sink.messages()
    mail = email.message_from_bytes(first.read_bytes())
    assert mail["Subject"] == "Reset your password, Ada"
    assert mail["To"] == "ada@example.com"
    assert mail["Message-ID"] == f"<{answer['delivery_id']}@brand.example>"
    assert mail["List-Unsubscribe"].startswith("<https://nudge.test/u/")
    assert "https://app.example/reset/1" in first.read_text()

    # the same key and body: the first answer again, nothing sent
    assert client.send_email(customerio.SendEmailRequest(**RESET)) == answer
    assert len(sink.messages()) == 1
    # the same key under another credential is another request
    other = requests.post(
        f"{serving.url}/v1/send/email", json=RESET, timeout=30,
        headers={"Authorization": "Bearer other-key", "Idempotency-Key": "reset-ada-1"},
    )  # fmt: skip
    assert other.status_code == 200 and other.json()["delivery_id"] != answer["delivery_id"]
    assert len(sink.messages()) == 2

    # the same key with another body: refused, explained, nothing sent
    conflict = post(serving, {**RESET, "message_data": {"name": "Eve", "link": "x"}}, "reset-ada-1")
    assert conflict.status_code == 422
    assert "used for a different request" in conflict.json()["meta"]["error"]
    assert len(sink.messages()) == 2

    # eight concurrent requests with one new key: one message, one answer for all
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: post(serving, RESET, "reset-ada-2"), range(8)))
    assert {a.status_code for a in answers} == {200}
    assert len({a.json()["delivery_id"] for a in answers}) == 1
    assert len(sink.messages()) == 3

    # a suppressed person is refused, saying who
    suppress = requests.post(
        f"{serving.url}/api/v1/customers/bob/suppress", auth=("site", "api-key"), timeout=10
    )
    assert suppress.status_code == 200
    refused = post(serving, {**RESET, "identifiers": {"id": "bob"}, "to": "bob@example.com"})
    assert refused.status_code == 400
    assert "recipient suppressed: 'bob'" in refused.json()["meta"]["error"]
    assert len(sink.messages()) == 3

    # the run copies the three sends into the ledger, the collector still serving
    env = {**os.environ, **smtp_env(sink), "NUDGE_HOME": str(serving.home),
           "NUDGE_CONTENT": str(serving.content)}  # fmt: skip
    run = subprocess.run(
        [sys.executable, "-m", "nudge.cli", "run"], env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    # the summary tells the collector's sends from the run's own (it sent none)
    summary = run.stdout[run.stdout.index("messages:") :]
    assert "(none handed to a provider or decided)" in summary
    assert "transactional sends recorded (sent by the collector when asked):" in summary
    assert re.search(r"^  email +3 sent$", summary, re.M), summary
    rows = ledger_rows(serving.home)
    sent_ids = sorted({answer["delivery_id"], other.json()["delivery_id"],
                       answers[0].json()["delivery_id"]})  # fmt: skip
    assert [r[0] for r in rows] == sent_ids
    assert {r[1:] for r in rows} == {
        (None, "password_reset", "email", "sent", "smtp", "ada@example.com")
    }
    assert len(sink.messages()) == 3  # the run sent nothing again

    # a copy repeated after a crash between the ledger's commit and the store's mark adds nothing
    with sqlite3.connect(serving.home / STORE_NAME) as store:
        store.execute("update sends set copied_at = null")
    with duckdb.connect(str(serving.home / "warehouse.duckdb")) as con:
        assert copy_into_ledger(con, run_id="again", as_of=datetime(2026, 1, 1)) == 3
    assert ledger_rows(serving.home) == rows


def test_bad_requests_get_a_clear_4xx_and_send_nothing(
    serving: CollectorProcess, sink: SmtpSink
) -> None:
    cases = [
        (RESET | {"transactional_message_id": "nope"}, "email", 404, "no email template named 'nope'"),
        (RESET | {"transactional_message_id": "login_code"}, "email", 404, "no email template"),
        (RESET, "fax", 404, "unknown channel 'fax'"),
        ({**RESET, "to": None}, "email", 400, "missing recipient"),
        (RESET | {"identifiers": {}}, "email", 400, "exactly one of id or email"),
        (RESET | {"message_data": {"name": "Ada"}}, "email", 422, "undefined variable 'event.link'"),
        (RESET | {"to": "ada@example.com\r\nBcc: eve@example.com"}, "email", 400, "line breaks"),
        (RESET | {"to": "Ada <ada@example.com>"}, "email", 400, "is not one email address"),
        (RESET | {"to": "ada@example.com, eve@example.com"}, "email", 400,
         "is not one email address"),
        (RESET | {"identifiers": {"email": "<ada@example.com>"}, "to": None}, "email", 400,
         "is not one email address"),
        (RESET | {"send_at": int(time.time()) + 86400}, "email", 400, "send_at is in the future"),
        (RESET | {"subject": "Hi"}, "email", 400, "unsupported field(s) subject"),
        ([RESET], "email", 400, "must be a JSON object"),
        (RESET | {"transactional_message_id": "login_code", "to": "+15550001"}, "sms", 400,
         "no sms provider is configured"),
    ]  # fmt: skip
    for body, channel, status, reason in cases:
        answer = post(serving, body, channel=channel)
        assert answer.status_code == status, (body, answer.text)
        assert reason in answer.json()["meta"]["error"], (body, answer.text)
    not_json = requests.post(
        f"{serving.url}/v1/send/email", data=b"{", timeout=10,
        headers={"Authorization": f"Bearer {APP_KEY}", "Content-Type": "application/json"},
    )  # fmt: skip
    assert not_json.status_code == 400 and "not JSON" in not_json.json()["meta"]["error"]
    unknown = requests.post(f"{serving.url}/v1/send/email", json=RESET, timeout=10,
                            headers={"Authorization": "Bearer wrong"})  # fmt: skip
    assert unknown.status_code == 401
    assert unknown.headers["WWW-Authenticate"] == 'Bearer realm="nudge"'
    assert sink.messages() == []


def test_no_app_api_keys_means_no_transactional_sends(tmp_path: Path) -> None:
    server = CollectorProcess(tmp_path / "home", write_content(tmp_path), COLLECTOR_ENV)
    server.start()
    try:
        answer = post(server, RESET)
    finally:
        server.stop()
    assert answer.status_code == 403
    assert "NUDGE_APP_API_KEYS is not set" in answer.json()["meta"]["error"]


# --- SendGrid: answers, failures, and a collector killed while the provider holds a message ----


def sendgrid_env(server: StandIn) -> dict[str, str]:
    return {
        **COLLECTOR_ENV,
        "NUDGE_APP_API_KEYS": APP_KEY,
        "NUDGE_EMAIL_PROVIDER": "sendgrid",
        "NUDGE_SENDGRID_API_KEY": "SG.test",
        "NUDGE_SENDGRID_BASE_URL": server.url,
        "NUDGE_SEND_RETRY_PAUSE": "0.01",
    }


def by_recipient(request: Request) -> Reply:
    """202 for ada, a permanent 400 for bad@, a 503 for down@, no answer at all for slow@."""
    to = request.json()["personalizations"][0]["to"][0]["email"]
    if to.startswith("bad@"):
        return Reply(400, {"errors": [{"message": "The to address is invalid"}]})
    if to.startswith("down@"):
        return Reply(503, "unavailable")
    if to.startswith("slow@"):
        return Reply(hang=True)
    return Reply(202, headers={"X-Message-Id": f"sg-{to}"})


@pytest.fixture
def sendgrid() -> Iterator[StandIn]:
    with standin(by_recipient) as running:
        yield running


def test_provider_failures_answer_5xx_and_are_recorded(sendgrid: StandIn, tmp_path: Path) -> None:
    server = CollectorProcess(tmp_path / "home", write_content(tmp_path), sendgrid_env(sendgrid))
    server.start()
    try:
        ok = post(server, RESET, "k-ok")
        payload = sendgrid.requests[0].json()
        bad = post(server, RESET | {"to": "bad@example.com"}, "k-bad")
        bad_again = post(server, RESET | {"to": "bad@example.com"}, "k-bad")
        down = post(server, RESET | {"to": "down@example.com"}, "k-down")
        down_requests = len(sendgrid.requests)
        down_again = post(server, RESET | {"to": "down@example.com"}, "k-down")
    finally:
        server.stop()
    assert ok.status_code == 200
    assert payload["custom_args"]["nudge_delivery_id"] == ok.json()["delivery_id"]
    assert payload["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # a permanent refusal: 502 with the provider's reason; the same key answers it again
    assert bad.status_code == 502 and "The to address is invalid" in bad.json()["meta"]["error"]
    assert bad_again.json() == bad.json()
    # a provider that stays down: retried right away (1 + NUDGE_SEND_RETRIES), then 503; nothing
    # was delivered, so the same key tries again
    assert down.status_code == 503
    assert down_requests == 1 + 1 + 3
    assert down_again.status_code == 503 and len(sendgrid.requests) == down_requests + 3
    with sqlite3.connect(tmp_path / "home" / STORE_NAME) as store:
        statuses = sorted(store.execute("select address, status from sends").fetchall())
    assert statuses == [
        ("ada@example.com", "sent"), ("bad@example.com", "failed"),
        ("down@example.com", "failed"), ("down@example.com", "failed"),
    ]  # fmt: skip


def test_killed_while_the_provider_holds_it_the_outcome_is_unknown_and_never_resent(
    sendgrid: StandIn, tmp_path: Path
) -> None:
    home, content = tmp_path / "home", write_content(tmp_path)
    server = CollectorProcess(home, content, sendgrid_env(sendgrid))
    server.start()
    body = RESET | {"to": "slow@example.com"}
    threading.Thread(target=lambda: _quietly(post, server, body, "k-slow"), daemon=True).start()
    deadline = time.monotonic() + 20
    while not sendgrid.requests:
        assert time.monotonic() < deadline, "the message never reached the provider"
        time.sleep(0.05)
    server.stop(signal.SIGKILL)

    again = CollectorProcess(home, content, sendgrid_env(sendgrid))
    again.start()
    try:
        retry = post(again, body, "k-slow")
    finally:
        again.stop()
    assert retry.status_code == 502
    assert retry.json()["meta"]["error"].startswith("outcome unknown")
    assert len(sendgrid.requests) == 1


def _quietly(call, *args) -> None:  # type: ignore[no-untyped-def]
    with contextlib.suppress(requests.RequestException):  # the collector is killed under it
        call(*args)


def test_sms_and_in_app_go_through_their_providers(tmp_path: Path) -> None:
    with standin(lambda _request: Reply(201, {"sid": "SM42"})) as twilio:
        env = {
            **COLLECTOR_ENV, "NUDGE_APP_API_KEYS": APP_KEY, "NUDGE_SMS_PROVIDER": "twilio",
            "NUDGE_TWILIO_ACCOUNT_SID": "AC1", "NUDGE_TWILIO_AUTH_TOKEN": "twilio-token",
            "NUDGE_TWILIO_FROM": "+15550000000", "NUDGE_TWILIO_BASE_URL": twilio.url,
        }  # fmt: skip
        server = CollectorProcess(tmp_path / "home", write_content(tmp_path), env)
        server.start()
        try:
            sms = post(server, {"transactional_message_id": "login_code", "to": "+15550001234",
                                "identifiers": {"id": "ada"}, "message_data": {"code": "424242"}},
                       channel="sms")  # fmt: skip
            inbox = post(server, {"transactional_message_id": "receipt", "identifiers":
                                  {"email": "ada@example.com"}, "message_data": {"order": 7}},
                         channel="in_app")  # fmt: skip
        finally:
            server.stop()
        [request] = twilio.requests
    assert sms.status_code == 200, sms.text
    assert (request.form()["To"], request.form()["Body"]) == ("+15550001234", "Your code is 424242")
    assert inbox.status_code == 200, inbox.text
    with sqlite3.connect(tmp_path / "home" / "inbox.sqlite3") as store:
        [(user_id, delivery_id, content)] = store.execute(
            "select user_id, delivery_id, content from inbox_messages"
        ).fetchall()
    assert (user_id, delivery_id) == ("ada@example.com", inbox.json()["delivery_id"])
    assert json.loads(content)["body"] == "Order 7 is paid"


# --- the send stage's side, in process ------------------------------------------------------


def transactional_request(to: str) -> SendRequest:
    return SendRequest(
        channel="email", template="welcome_email", user_id="u1", email=None, to=to,
        message_data={}, scope="s", idempotency_key=None, fingerprint=to,
    )  # fmt: skip


def test_bounced_addresses_are_refused_and_sends_count_toward_no_journey_cap(
    sender_warehouse: duckdb.DuckDBPyConnection,
) -> None:
    """The send stage gives the store the warehouse's suppressed addresses; the copied sends
    (journey null) do not use up a journey's frequency cap."""
    con = sender_warehouse
    con.execute(
        "insert into nudge.suppressed_addresses values ('email', 'gone@example.com', "
        "'bounced: 550 no such user', ?)",
        [T0],
    )
    assert mirror_suppressed_addresses(con) == 1
    store = TransactionalStore(store_path(warehouse_file(con)))
    sender = TransactionalSender(
        store, content=lambda: dispatch_content(), providers=lambda _c: CapturingProvider("email"),
        suppressed_ids=frozenset, settings=DispatchSettings(),
    )  # fmt: skip
    with pytest.raises(Refusal) as refused:
        sender.send(transactional_request("Gone@example.com"))
    assert "'Gone@example.com' bounced: 550 no such user" in refused.value.reason
    assert sender.send(transactional_request("u1@example.com")).status == 200
    store.close()
    assert copy_into_ledger(con, run_id="r1", as_of=T0) == 1

    caps = Policies(frequency_caps=(FrequencyCap("email", 1, timedelta(days=1)),))
    add_user(con, "u1", email="u1@example.com")
    enqueue(con, "a1", "u1")
    run(con, {"email": CapturingProvider("email")}, policies=caps)
    assert ledger(con)["a1"] == ("sent", None)


def test_an_address_suppressed_by_a_call_addressed_by_email_is_refused_in_any_case(
    tmp_path: Path,
) -> None:
    """A Track API suppression addressed by an email puts the address on the collector's list;
    a transactional send to it is refused whatever the letter case, and another address sends."""
    store = TransactionalStore(tmp_path / "transactional.sqlite3")
    sender = TransactionalSender(
        store, content=lambda: dispatch_content(), providers=lambda _c: CapturingProvider("email"),
        suppressed_ids=lambda: frozenset({"Ada@Example.com"}), settings=DispatchSettings(),
    )  # fmt: skip
    with pytest.raises(Refusal) as refused:
        sender.send(transactional_request("ada@example.COM"))
    assert "recipient suppressed: 'ada@example.COM'" in refused.value.reason
    assert sender.send(transactional_request("bob@example.com")).status == 200
    store.close()


def test_a_mistake_in_one_channels_settings_stops_only_that_channel(
    tmp_path: Path, sink: SmtpSink
) -> None:
    env = smtp_env(sink) | {"NUDGE_SMS_PROVIDER": "pigeon"}
    server = CollectorProcess(tmp_path / "home", write_content(tmp_path), env)
    server.start()
    try:
        reset = post(server, RESET)
        sms = post(server, RESET | {"transactional_message_id": "login_code", "to": "+15550001"},
                   channel="sms")  # fmt: skip
    finally:
        output = server.stop()
    assert "Traceback" not in output, output
    assert reset.status_code == 200, reset.text
    assert [email.message_from_bytes(m.read_bytes())["To"] for m in sink.messages()] == [
        "ada@example.com"
    ]
    assert sms.status_code == 503, sms.text
    assert "NUDGE_SMS_PROVIDER='pigeon' is not a sms provider" in sms.json()["meta"]["error"]


@pytest.mark.slow
def test_an_edited_template_is_sent_without_a_restart_and_a_broken_edit_keeps_the_last(
    serving: CollectorProcess, sink: SmtpSink
) -> None:
    def subjects() -> list[str]:
        return [email.message_from_bytes(m.read_bytes())["Subject"] for m in sink.messages()]

    assert post(serving, RESET).status_code == 200
    definitions = serving.content / "definitions.yml"
    definitions.write_text(TEMPLATES.replace("Reset your password,", "Your reset link,"))
    time.sleep(1.2)  # the collector looks at the content folder at most once a second
    assert post(serving, RESET).status_code == 200
    definitions.write_text(TEMPLATES + "  - {name: broken, channel: nowhere}\n")
    time.sleep(1.2)
    assert post(serving, RESET).status_code == 200  # the last good templates stay in use
    assert subjects() == [
        "Reset your password, Ada",
        "Your reset link, Ada",
        "Your reset link, Ada",
    ]
    output = serving.stop()
    assert "has problems; the content read before stays in use" in output
    assert "nowhere" in output
