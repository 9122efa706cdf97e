"""Delivery against servers that misbehave and processes that die: real aiosmtpd servers (slow,
dropping the connection after storing the message, answering late), a port nobody listens on, a
listener that never answers, and the real CLI killed with SIGKILL in the middle of a send."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import duckdb
import pytest
from aiosmtpd.controller import Controller

from nudge.devtools.free_port import free_port
from senders.dispatch import DispatchSummary, dispatch_pending
from senders.email import SmtpEmailProvider, SmtpSettings
from senders.settings import DispatchSettings
from tests.test_senders_smtp import CONTENT, T0, add_user_with_send

FAST = DispatchSettings(retry_pause=timedelta(milliseconds=5))
SENDER = "Nudge <hello@mail.example>"


class StoringServer:
    """An SMTP handler that stores every message, then answers after ``delay`` seconds, or
    drops the connection without answering (``drop``)."""

    def __init__(self, *, delay: float = 0.0, drop: bool = False):
        self.delay, self.drop = delay, drop
        self.received: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.received.append(parsed)  # type: ignore[arg-type]
        if self.drop:
            server.transport.close()
        await asyncio.sleep(self.delay)
        return "250 OK"

    def delivery_ids(self) -> Counter[str]:
        return Counter(str(m["X-Nudge-Delivery-Id"]) for m in self.received)


@contextmanager
def serving(handler: StoringServer) -> Iterator[int]:
    port = free_port("127.0.0.1")
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@pytest.fixture
def con(sender_warehouse: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    return sender_warehouse


def dispatch(con, provider, *, as_of=T0, settings: DispatchSettings | None = FAST):
    return dispatch_pending(
        con,
        as_of=as_of,
        run_id=f"run-{as_of.isoformat()}",
        content=CONTENT,
        providers={"email": provider},
        settings=settings,
    )


def ledger(con) -> dict[str, tuple[str, bool | None, str | None]]:
    rows = con.execute(
        "select delivery_id, status, permanent, reason from nudge.delivery_ledger"
    ).fetchall()
    return {d: (s, p, r) for d, s, p, r in rows}


def smtp(port: int, **settings: float) -> SmtpEmailProvider:
    return SmtpEmailProvider(SmtpSettings(port=port, sender=SENDER, timeout=5, **settings))


def test_a_message_stored_before_the_connection_dropped_is_not_sent_again(con):
    for user in ("ada", "bob"):
        add_user_with_send(con, user, f"{user}@example.com")
    server = StoringServer(drop=True)
    with serving(server) as port:
        first = dispatch(con, smtp(port))
        later = dispatch(con, smtp(port), as_of=T0 + timedelta(days=1))

    assert server.delivery_ids() == {"d-ada": 1, "d-bob": 1}  # stored once each, never resent
    assert sorted(str(m["Message-ID"]) for m in server.received) == [
        "<d-ada@mail.example>",
        "<d-bob@mail.example>",
    ]
    assert first.total("failed") == 2 and later.total() == 0
    for status, permanent, reason in ledger(con).values():
        assert (status, permanent) == ("failed", True)
        assert reason.startswith("outcome unknown: no reply from the smtp server after the message")


def test_a_reply_after_the_data_timeout_is_ambiguous_and_stops_the_server(con):
    for user in ("ada", "bob", "cy"):
        add_user_with_send(con, user, f"{user}@example.com")
    server = StoringServer(delay=2.0)
    with serving(server) as port:
        summary = dispatch(con, smtp(port, data_timeout=0.3))

    assert server.delivery_ids() == {"d-ada": 1}
    assert str(server.received[0]["Message-ID"]) == "<d-ada@mail.example>"
    status, permanent, reason = ledger(con)["d-ada"]
    assert (status, permanent) == ("failed", True) and reason.startswith("outcome unknown")
    assert set(ledger(con)) == {"d-ada"}  # bob and cy: no ledger row, pending for the next run
    assert summary.total("pending") == 2
    assert summary.notes() == [
        f"smtp 127.0.0.1:{port}: timed out ({reason}); 2 email messages left pending for the "
        "next run"
    ]


def add_many(con, n: int) -> None:
    con.execute(
        """insert into marts.dim_users
           select 'u' || i, json_object('email', 'u' || i || '@example.com', 'first_name', 'U'),
                  'u' || i || '@example.com', null, null, false
           from range(?) t(i)""",
        [n],
    )
    con.execute(
        """insert into nudge.outbox (idempotency_key, delivery_id, run_id, as_of, entry_id, journey,
               step, user_id, channel, template, transactional, holdout, created_at)
           select 'k-u' || i, 'd-u' || i, 'r0', $t0, 'e-u' || i, 'onboarding', 'welcome', 'u' || i,
                  'email', 'welcome_email', false, false, $t0
           from range($n) t(i)""",
        {"t0": T0, "n": n},
    )


@pytest.mark.parametrize("server", ["refusing", "hung"])
def test_a_dead_or_hung_server_leaves_every_message_pending_within_seconds(
    con, monkeypatch: pytest.MonkeyPatch, server: str
):
    """Before: 200 x 3 tries, 30 s each for a hung server, ~0.3 s of pauses each when refused."""
    add_many(con, 200)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    if server == "hung":
        listener.listen(8)  # connections complete in the backlog; nobody ever answers
    port = listener.getsockname()[1]
    monkeypatch.setenv("NUDGE_SMTP_PORT", str(port))
    monkeypatch.setenv("NUDGE_SMTP_TIMEOUT", "0.5")
    monkeypatch.setenv("NUDGE_EMAIL_FROM", SENDER)
    result: list[DispatchSummary] = []
    worker = threading.Thread(
        target=lambda: result.append(
            dispatch(con, SmtpEmailProvider(SmtpSettings.from_env()), settings=None)
        ),
        daemon=True,
    )
    try:
        worker.start()
        worker.join(timeout=30)
        assert not worker.is_alive(), "the dispatch was still trying after 30 s"
    finally:
        listener.close()

    summary = result[0]
    assert summary.total("pending") == 200 and summary.total() == 200  # nothing failed or sent
    assert con.execute("select count(*) from nudge.delivery_ledger").fetchone() == (0,)
    why = "timed out" if server == "hung" else "3 connections failed in a row"
    (note,) = summary.notes()
    assert note.startswith(f"smtp 127.0.0.1:{port}: {why}")
    assert note.endswith("; 200 email messages left pending for the next run")


def test_an_address_that_would_add_a_header_is_never_handed_over(con, smtp_sink):
    add_user_with_send(con, "eve", "eve@example.com")
    # the dispatch's policy refuses it (not one bare address) before the message builder, which
    # would refuse it too, sees it
    con.execute(
        "update marts.dim_users set email = 'eve@example.com' || chr(13) || chr(10) || 'Bcc: x@y.z'"
    )
    dispatch(con, smtp(smtp_sink.port))
    dispatch(con, smtp(smtp_sink.port), as_of=T0 + timedelta(days=2))

    assert smtp_sink.messages() == []
    status, _, reason = ledger(con)["d-eve"]
    assert (status, reason) == ("undeliverable", "not one email address")
    assert con.execute("select count(*) from nudge.delivery_ledger").fetchone() == (1,)


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
USERS = 300


def start(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so the kill reaches nothing else
        )


@contextmanager
def killed_at_exit(process: subprocess.Popen[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@dataclass
class Broadcast:
    """A workspace with USERS ingested users and a broadcast to all of them, and a server that
    takes 20 ms per message."""

    home: Path
    env: dict[str, str]
    log: Path
    server: StoringServer

    def start_run(self) -> subprocess.Popen[bytes]:
        """``nudge run``, waiting until the server has 50 messages."""
        run = start(self.env, self.log, "-m", "nudge.cli", "run", "--as-of", "2026-01-01T00:01Z")
        deadline = time.monotonic() + 180
        while len(self.server.received) < 50 and run.poll() is None:
            assert time.monotonic() < deadline, "the run sent nothing for 3 minutes"
            time.sleep(0.01)
        return run

    def ledger(self) -> list[tuple[str, str, str | None]]:
        warehouse = str(self.home / "warehouse.duckdb")
        with duckdb.connect(warehouse, read_only=True) as con:
            return con.execute(
                "select delivery_id, status, reason from nudge.delivery_ledger"
            ).fetchall()


@pytest.fixture
def broadcast(tmp_path: Path) -> Iterator[Broadcast]:
    content = tmp_path / "content"
    content.mkdir()
    (content / "news.yml").write_text(BROADCAST)
    events = tmp_path / "events.ndjson"
    events.write_text(
        "\n".join(
            json.dumps(
                {
                    "type": "identify",
                    "userId": f"u{i}",
                    "timestamp": "2026-01-01T00:00:00Z",
                    "traits": {"plan": "pro", "email": f"u{i}@example.com"},
                }
            )
            for i in range(USERS)
        )
    )
    server = StoringServer(delay=0.02)
    with serving(server) as port:
        home = tmp_path / "home"
        env = {
            **os.environ,
            "NUDGE_HOME": str(home),
            "NUDGE_CONTENT": str(content),
            "NUDGE_SMTP_PORT": str(port),
        }
        log = tmp_path / "output.log"
        with killed_at_exit(start(env, log, "-m", "nudge.cli", "ingest", str(events))) as ingest:
            assert ingest.wait(timeout=120) == 0, log.read_text()
        yield Broadcast(home, env, log, server)


@pytest.mark.slow
def test_kill_9_mid_send_then_rerun_delivers_each_message_once(broadcast: Broadcast):
    with killed_at_exit(broadcast.start_run()) as cli_run:
        os.killpg(cli_run.pid, signal.SIGKILL)
    received = broadcast.server.received
    assert 50 <= len(received) < USERS, "the kill did not land in the middle of the send"

    # the real CLI again: the killed run's pool slot and `running` row are recovered by this one
    rerun = start(
        broadcast.env, broadcast.log, "-m", "nudge.cli", "run", "--as-of", "2026-01-01T00:02Z"
    )
    with killed_at_exit(rerun):
        assert rerun.wait(timeout=300) == 0, broadcast.log.read_text()

    received = broadcast.server.delivery_ids()
    assert max(received.values()) == 1  # no message reached the server twice
    rows = broadcast.ledger()
    assert len(rows) == USERS
    sent = {d for d, status, _ in rows if status == "sent"}
    unsent = {d: reason for d, status, reason in rows if status != "sent"}
    assert len(unsent) <= 1  # only the message in flight at the kill, if the kill caught one
    assert all(reason.startswith("outcome unknown") for reason in unsent.values())
    assert sent <= set(received) <= sent | set(unsent)  # the ledger agrees with the server


@pytest.mark.slow
def test_sigterm_mid_send_records_the_message_in_hand_and_leaves_the_rest_pending(
    broadcast: Broadcast,
):
    with killed_at_exit(broadcast.start_run()) as cli_run:
        cli_run.send_signal(signal.SIGTERM)
        cli_run.wait(timeout=60)
    received = broadcast.server.delivery_ids()
    assert max(received.values()) == 1 and len(received) < USERS

    rows = broadcast.ledger()
    # every message the server got is recorded as sent; the others have no ledger row at all,
    # so the next run sends them
    assert {d for d, status, _ in rows} == set(received)
    assert {status for _, status, _ in rows} == {"sent"}
