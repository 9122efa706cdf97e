"""The in-app inbox served by a real `nudge serve`: messages the in_app sender stored through the
delivery ledger, listed, read and dismissed over the Track-credentialled API and over the
browser API with each person's HMAC hash; events of what people did landed like any other."""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
import requests

from nudge.core.workspace import Workspace
from senders.channels.in_app import InboxProvider
from tests.conftest import COLLECTOR_ENV, CollectorProcess, running_collector
from tests.test_collector_clients import landed
from tests.test_senders_dispatch import T0, enqueue
from tests.test_senders_http import run, users

SECRET = "inbox-test-secret-0123456789abcdef0123456789"
ORIGIN = "https://app.example.com"
TRACK = ("site", "api-key")
INBOX_ENV = {**COLLECTOR_ENV, "NUDGE_INBOX_SECRET": SECRET, "NUDGE_INBOX_ORIGINS": ORIGIN}


def user_hash(user_id: str) -> str:
    """What the customer's own server computes for its page (no nudge code involved)."""
    return hmac.new(SECRET.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def stored(workspace: Workspace) -> dict[str, tuple[str, str | None, str | None]]:
    """``delivery_id: (user_id, read_at, dismissed_at)`` as the inbox file holds them."""
    with sqlite3.connect(workspace.inbox_path) as con:
        rows = con.execute(
            "select delivery_id, user_id, read_at, dismissed_at from inbox_messages"
        ).fetchall()
    return {d: (u, r, x) for d, u, r, x in rows}


@pytest.fixture
def workspace(tmp_path: Path, sender_warehouse: duckdb.DuckDBPyConnection) -> Workspace:
    """Three messages for u0 and one for u1, stored by the in_app sender from the ledger of the
    warehouse file in the workspace home (released afterwards)."""
    workspace = Workspace(home=tmp_path, content_dir=tmp_path / "content")
    assert workspace.warehouse_path == tmp_path / "warehouse.duckdb"
    users(sender_warehouse, 2)
    for minute, key in enumerate(("tip-1", "tip-2", "tip-3")):
        enqueue(sender_warehouse, key, "u0", template="tip", channel="in_app")
        run(sender_warehouse, {"in_app": InboxProvider(workspace.inbox_path)},
            as_of=T0 + timedelta(minutes=minute))  # fmt: skip
    enqueue(sender_warehouse, "tip-u1", "u1", template="tip", channel="in_app")
    run(sender_warehouse, {"in_app": InboxProvider(workspace.inbox_path)})
    statuses = sender_warehouse.execute("select status from nudge.delivery_ledger").fetchall()
    assert statuses == [("sent",)] * 4
    sender_warehouse.close()
    return workspace


@pytest.fixture
def collector(workspace: Workspace) -> Iterator[CollectorProcess]:
    with running_collector(workspace.home, workspace.content_dir, INBOX_ENV) as server:
        yield server


def api(collector: CollectorProcess, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, f"{collector.url}/api/v1/customers/{path}", auth=TRACK,
                            timeout=10, **kwargs)  # fmt: skip


def browser(
    collector: CollectorProcess, method: str, user_id: str, path: str = "", **kwargs
) -> requests.Response:
    url = f"{collector.url}/inbox/{user_id}/messages{path}"
    return requests.request(method, url, timeout=10, **kwargs)


def test_the_server_api_lists_pages_reads_and_dismisses(
    workspace: Workspace, collector: CollectorProcess
) -> None:
    listed = api(collector, "GET", "u0/inbox").json()
    assert [m["delivery_id"] for m in listed["messages"]] == ["d-tip-3", "d-tip-2", "d-tip-1"]
    assert listed["messages"][0]["content"] == {"title": "Tip", "body": "Try the CLI"}
    assert listed["unread"] == 3 and listed["next"] is None

    first = api(collector, "GET", "u0/inbox", params={"limit": 2}).json()
    assert [m["delivery_id"] for m in first["messages"]] == ["d-tip-3", "d-tip-2"]
    rest = api(collector, "GET", "u0/inbox", params={"limit": 2, "before": first["next"]}).json()
    assert [m["delivery_id"] for m in rest["messages"]] == ["d-tip-1"] and rest["next"] is None

    answer = api(collector, "POST", "u0/inbox/d-tip-2/read")
    assert answer.status_code == 200 and answer.json() == {"delivery_id": "d-tip-2", "unread": 2}
    assert stored(workspace)["d-tip-2"][1] is not None
    assert stored(workspace)["d-tip-1"][1] is None

    assert api(collector, "POST", "u0/inbox/d-tip-3/dismiss").json()["unread"] == 1
    listed = api(collector, "GET", "u0/inbox").json()
    assert [m["delivery_id"] for m in listed["messages"]] == ["d-tip-2", "d-tip-1"]
    everything = api(collector, "GET", "u0/inbox", params={"include_dismissed": "true"}).json()
    assert everything["messages"][0]["delivery_id"] == "d-tip-3"
    assert everything["messages"][0]["dismissed_at"] is not None

    assert api(collector, "POST", "u0/inbox/read").json() == {"read": 1, "unread": 0}
    assert all(read for u, read, gone in stored(workspace).values() if u == "u0" and not gone)
    assert stored(workspace)["d-tip-u1"][1:] == (None, None)  # u1's message untouched

    events = [
        (row["user_id"], row["event"], json.loads(row["properties"])["delivery_id"])
        for row in landed(collector, workspace.home)
    ]
    assert sorted(events) == [
        ("u0", "Inbox Message Dismissed", "d-tip-3"),
        ("u0", "Inbox Message Read", "d-tip-1"),
        ("u0", "Inbox Message Read", "d-tip-2"),
    ]


def test_the_server_api_refuses_bad_credentials_and_bad_parameters(
    collector: CollectorProcess,
) -> None:
    url = f"{collector.url}/api/v1/customers/u0/inbox"
    assert requests.get(url, timeout=10).status_code == 401
    wrong = requests.get(url, auth=("site", "wrong"), timeout=10)
    assert wrong.status_code == 401 and wrong.json() == {
        "meta": {"error": "unknown site_id or api_key"}
    }
    for params, says in (
        ({"limit": "0"}, "limit must be a whole number from 1 to 100, not '0'"),
        ({"include_dismissed": "maybe"}, "include_dismissed must be true or false"),
        ({"before": "d-tip-u1"}, "before: 'u0' has no message 'd-tip-u1'"),
    ):
        answer = api(collector, "GET", "u0/inbox", params=params)
        assert answer.status_code == 400 and says in answer.json()["meta"]["error"], answer.text
    missing = api(collector, "POST", "u0/inbox/d-tip-u1/read")  # u1's message, asked for as u0
    assert missing.status_code == 404 and "'u0' has no inbox message" in missing.text


def test_the_browser_api_needs_the_persons_hash_and_gets_only_their_inbox(
    workspace: Workspace, collector: CollectorProcess
) -> None:
    by_header = browser(collector, "GET", "u0", headers={"X-Nudge-User-Hash": user_hash("u0")})
    assert by_header.status_code == 200 and by_header.json()["unread"] == 3
    by_query = browser(collector, "GET", "u0", params={"user_hash": user_hash("u0")})
    assert by_query.json() == by_header.json()

    missing = browser(collector, "GET", "u0")
    assert missing.status_code == 401 and "missing user hash" in missing.json()["error"]
    for wrong in (user_hash("u1"), user_hash("u0")[:-1] + "0", "not-hex", "é"):
        answer = browser(collector, "GET", "u0", headers={"X-Nudge-User-Hash": wrong.encode()})
        assert answer.status_code == 401, wrong
        assert answer.json()["error"] == "the user hash does not match user 'u0'"
    # u1's own hash cannot reach u0's messages, nor u0's hash u1's.
    assert browser(collector, "POST", "u0", "/d-tip-1/read",
                   headers={"X-Nudge-User-Hash": user_hash("u1")}).status_code == 401  # fmt: skip
    foreign = browser(collector, "POST", "u0", "/d-tip-u1/dismiss",
                      headers={"X-Nudge-User-Hash": user_hash("u0")})  # fmt: skip
    assert foreign.status_code == 404
    assert all(read is None and gone is None for _, read, gone in stored(workspace).values())

    mine = {"X-Nudge-User-Hash": user_hash("u1")}
    assert browser(collector, "POST", "u1", "/d-tip-u1/read", headers=mine).json()["unread"] == 0
    assert stored(workspace)["d-tip-u1"][1] is not None
    # the refused calls landed nothing; the accepted one its event
    events = [
        (row["user_id"], row["event"], row["message_id"])
        for row in landed(collector, workspace.home)
    ]
    assert events == [("u1", "Inbox Message Read", "inbox-read-d-tip-u1")]


def test_cors_lets_the_configured_origin_call_and_read_refusals(collector: CollectorProcess):
    preflight = requests.options(
        f"{collector.url}/inbox/u0/messages/read",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "x-nudge-user-hash"},
        timeout=10,
    )  # fmt: skip
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    refused = browser(collector, "GET", "u0", headers={"Origin": ORIGIN})
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == ORIGIN
    other = browser(collector, "GET", "u0", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


HOLD_WAREHOUSE = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("begin")
con.execute("create table held (x int)")
print("held", flush=True)
sys.stdin.read()
"""


def test_the_inbox_answers_while_another_process_holds_the_warehouse(
    workspace: Workspace, collector: CollectorProcess
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_WAREHOUSE, str(workspace.warehouse_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(duckdb.IOException, match="lock"):
            duckdb.connect(str(workspace.warehouse_path))
        hash_header = {"X-Nudge-User-Hash": user_hash("u0")}
        assert browser(collector, "GET", "u0", headers=hash_header).json()["unread"] == 3
        assert browser(collector, "POST", "u0", "/read", headers=hash_header).status_code == 200
        assert api(collector, "GET", "u0/inbox").json()["unread"] == 0
    finally:
        holder.communicate("", timeout=30)
    assert holder.returncode == 0


def test_no_secret_means_no_browser_inbox(tmp_path: Path) -> None:
    server = CollectorProcess(tmp_path / "home", tmp_path / "content", COLLECTOR_ENV)
    server.start()
    try:
        answer = browser(server, "GET", "u0", headers={"X-Nudge-User-Hash": user_hash("u0")})
        assert answer.status_code == 403
        assert answer.json()["error"] == (
            "this collector serves no browser inbox: NUDGE_INBOX_SECRET is not set"
        )
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("setting", "value", "says"),
    [
        (
            "NUDGE_INBOX_SECRET",
            "short",
            "NUDGE_INBOX_SECRET must be a random secret of at least 32",
        ),
        ("NUDGE_INBOX_ORIGINS", "app.example.com", "not 'app.example.com'"),
        ("NUDGE_INBOX_ORIGINS", "https://app.example.com/inbox", "(scheme and host, no path)"),
    ],
)
def test_nudge_serve_refuses_a_bad_inbox_setting(
    tmp_path: Path, setting: str, value: str, says: str
) -> None:
    server = CollectorProcess(tmp_path / "home", tmp_path / "content",
                              {**INBOX_ENV, setting: value})  # fmt: skip
    with pytest.raises(RuntimeError, match="nudge serve exited") as refused:
        server.start()
    assert says in str(refused.value) and "Traceback" not in str(refused.value)
