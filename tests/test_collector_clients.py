"""``nudge serve`` driven by the real Segment, RudderStack and Customer.io client libraries."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests
from customerio import CustomerIO, CustomerIOException
from rudderstack.analytics import Client as RudderClient
from segment.analytics import Client as SegmentClient

from nudge.core.landing.loader import load_new_files
from tests.conftest import CollectorProcess

WRITE_KEY = "test-write-key"


def landed(collector: CollectorProcess, tmp_path: Path) -> list[dict[str, Any]]:
    """Stop the collector (publishing its journal), load the landing area into a scratch
    DuckDB file and return every row of ``raw.events``."""
    collector.stop(signal.SIGTERM)
    with duckdb.connect(str(tmp_path / "check.duckdb")) as con:
        load_new_files(con, collector.home / "landing" / "events")
        cursor = con.execute("select * from raw.events order by timestamp, message_id")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def track_client(collector: CollectorProcess) -> CustomerIO:
    client = CustomerIO(site_id="site", api_key="api-key", retries=0)
    client.base_url = f"{collector.url}/api/v1"  # the client builds https URLs otherwise
    return client


def test_segment_and_rudderstack_clients_land_every_message(
    collector: CollectorProcess, tmp_path: Path
) -> None:
    errors: list[Any] = []
    segment = SegmentClient(
        WRITE_KEY, host=collector.url, sync_mode=True, on_error=lambda e, b: errors.append(e)
    )
    segment.identify("u1", {"plan": "pro", "email": "u1@example.com"})
    segment.track("u1", "Signed Up", {"source": "ads"})
    segment.page("u1", "Docs", "Pricing", {"path": "/pricing"})
    segment.group("u1", "g1", {"name": "Acme"})
    segment.alias("anon-1", "u1")
    rudder = RudderClient(  # gzip bodies, RudderStack's default
        WRITE_KEY, host=collector.url, sync_mode=True, on_error=lambda e, b: errors.append(e)
    )
    rudder.track("u2", "Ordered", {"total": 12.5})
    rudder.screen("u2", "App", "Home")
    assert errors == []

    rows = landed(collector, tmp_path)
    by_type = {(r["type"], r["user_id"]) for r in rows}
    assert by_type == {
        ("identify", "u1"),
        ("track", "u1"),
        ("page", "u1"),
        ("group", "u1"),
        ("alias", "u1"),
        ("track", "u2"),
        ("screen", "u2"),
    }
    identify = next(r for r in rows if r["type"] == "identify")
    assert json.loads(identify["traits"]) == {"plan": "pro", "email": "u1@example.com"}
    ordered = next(r for r in rows if r["event"] == "Ordered")
    assert json.loads(ordered["properties"]) == {"total": 12.5}
    assert next(r for r in rows if r["type"] == "alias")["previous_id"] == "anon-1"
    assert len({r["message_id"] for r in rows}) == len(rows)


def test_customerio_client_calls_become_the_documented_messages(
    collector: CollectorProcess, tmp_path: Path
) -> None:
    cio = track_client(collector)
    cio.identify("u1", email="u1@example.com", plan="pro", anonymous_id="anon-7")
    cio.identify("email:jo@example.com", plan="free")
    cio.track("u1", "Purchased", {"price": 30}, id="evt-1", timestamp=1767225600)
    cio.track_anonymous("anon-9", "Viewed", {"page": "/"})
    cio.pageview("u1", "/home")
    cio.add_device("u1", "tok-1", "ios", last_used=1767225600, attributes={"app": "2.0"})
    cio.delete_device("u1", "tok-1")
    cio.merge_customers("id", "u1", "email", "jo@example.com")
    cio.delete("u3")

    rows = landed(collector, tmp_path)
    shapes = [(r["type"], r["user_id"], r["anonymous_id"], r["event"] or r["name"]) for r in rows]
    assert sorted(shapes, key=str) == sorted(
        [
            ("identify", "u1", "anon-7", None),
            ("identify", "jo@example.com", None, None),
            ("track", "u1", None, "Purchased"),
            ("track", None, "anon-9", "Viewed"),
            ("page", "u1", None, "/home"),
            ("track", "u1", None, "Device Created or Updated"),
            ("track", "u1", None, "Device Deleted"),
            ("alias", "u1", None, None),
            ("delete", "u3", None, None),
        ],
        key=str,
    )
    traits = {r["user_id"]: json.loads(r["traits"]) for r in rows if r["type"] == "identify"}
    assert traits == {
        "u1": {"email": "u1@example.com", "plan": "pro"},
        "jo@example.com": {"email": "jo@example.com", "plan": "free"},
    }
    purchased = next(r for r in rows if r["event"] == "Purchased")
    assert purchased["message_id"] == "evt-1"
    assert purchased["timestamp"].isoformat() == "2026-01-01T00:00:00"
    device = next(r for r in rows if r["event"] == "Device Created or Updated")
    assert json.loads(device["properties"]) == {
        "device_id": "tok-1",
        "platform": "ios",
        "last_used": 1767225600,
        "attributes": {"app": "2.0"},
    }
    deleted = next(r for r in rows if r["event"] == "Device Deleted")
    assert json.loads(deleted["properties"]) == {"device_id": "tok-1"}
    merge = next(r for r in rows if r["type"] == "alias")
    assert merge["previous_id"] == "jo@example.com"
    assert json.loads(merge["context"]) == {"nudge": {"merge": True}}


def test_track_api_v2_batch_operations_become_the_same_messages(
    collector: CollectorProcess, tmp_path: Path
) -> None:
    cio = track_client(collector)
    person = {"type": "person", "identifiers": {"id": "u1"}}
    answer = cio.send_request(  # the client's own request path; its batch() builds https URLs
        "POST",
        f"{collector.url}/api/v2/batch",
        {
            "batch": [
                {**person, "action": "identify", "attributes": {"plan": "pro"}},
                {**person, "action": "event", "name": "Paid", "id": "p1", "attributes": {"n": 1}},
                {**person, "action": "add_device", "device": {"token": "t1", "platform": "ios"}},
                {**person, "action": "delete_device", "device": {"token": "t1"}},
                {
                    "type": "person",
                    "action": "merge",
                    "primary": {"id": "u1"},
                    "secondary": {"email": "x@example.com"},
                },
                {**person, "action": "fly"},
                {"type": "object", "action": "identify"},
                {"type": "person", "identifiers": {"id": "u2"}, "action": "suppress"},
            ]
        },
    ).json()
    assert answer["accepted"] == 6
    assert [(r["index"], r["reason"]) for r in answer["rejected"]] == [
        (
            5,
            "action 'fly' is not one of identify, delete, event, page, screen, add_device, "
            "delete_device, suppress, unsuppress, merge",
        ),
        (6, "type 'object' is not supported (only person)"),
    ]
    assert cio.track("u2", "Dropped").json()["suppressed"] == 1

    rows = landed(collector, tmp_path)
    assert sorted((r["type"], r["user_id"], r["event"] or "") for r in rows) == sorted(
        [
            ("identify", "u1", ""),
            ("track", "u1", "Paid"),
            ("track", "u1", "Device Created or Updated"),
            ("track", "u1", "Device Deleted"),
            ("alias", "u1", ""),
            ("track", "u2", "User Suppressed"),
        ]
    )


def test_a_v2_batch_suppresses_and_unsuppresses_in_batch_order(
    collector: CollectorProcess, tmp_path: Path
) -> None:
    """The last of a person's suppress and unsuppress operations in one batch holds, in the
    collector's list and in the timestamps the warehouse orders them by."""
    cio = track_client(collector)

    def operation(user: str, action: str) -> dict[str, Any]:
        return {"type": "person", "identifiers": {"id": user}, "action": action}

    batch = [
        operation("u2", "suppress"),
        operation("u3", "unsuppress"),
        operation("u2", "unsuppress"),
        operation("u3", "suppress"),
    ]
    answer = cio.send_request("POST", f"{collector.url}/api/v2/batch", {"batch": batch})
    assert answer.json()["accepted"] == 4
    assert json.loads((collector.home / "suppressions.json").read_text()) == ["u3"]
    assert cio.track("u2", "Kept").json()["accepted"] == 1
    assert cio.track("u3", "Dropped").json()["suppressed"] == 1

    rows = [r for r in landed(collector, tmp_path) if r["event"] != "Kept"]
    assert [(r["user_id"], r["event"]) for r in rows] == [  # in timestamp order
        ("u2", "User Suppressed"),
        ("u3", "User Unsuppressed"),
        ("u2", "User Unsuppressed"),
        ("u3", "User Suppressed"),
    ]
    assert len({r["timestamp"] for r in rows}) == 4


def test_suppressed_people_are_dropped_and_counted_until_unsuppressed(
    collector: CollectorProcess, tmp_path: Path
) -> None:
    cio = track_client(collector)
    cio.identify("u1", plan="pro")
    cio.suppress("u1")
    dropped = cio.track("u1", "Ignored")
    assert dropped.json() == {"accepted": 0, "suppressed": 1, "rejected": []}
    answer = requests.post(
        f"{collector.url}/v1/batch",
        auth=(WRITE_KEY, ""),
        json={"batch": [{"type": "track", "userId": "u1", "event": "Also ignored"}]},
        timeout=10,
    )
    assert answer.status_code == 200 and answer.json()["suppressed"] == 1
    cio.unsuppress("u1")
    cio.track("u1", "Back")

    events = [r["event"] for r in landed(collector, tmp_path) if r["type"] == "track"]
    assert events == ["User Suppressed", "User Unsuppressed", "Back"]
    assert json.loads((collector.home / "suppressions.json").read_text()) == []


def test_repeated_track_api_calls_are_distinct_messages(
    collector: CollectorProcess, tmp_path: Path
) -> None:
    """Calls that carry no id or time and say the same thing are still separate messages: a
    second suppression after an unsuppression, a trait set back to an earlier value. (The
    warehouse keeps the first of messages sharing an id.)"""
    cio = track_client(collector)
    for plan in ("pro", "free", "pro"):
        cio.identify("u1", plan=plan)
    cio.suppress("u1")
    cio.unsuppress("u1")
    cio.suppress("u1")
    person = {"type": "person", "identifiers": {"id": "u2"}}
    batch = [{**person, "action": "identify", "attributes": {"plan": p}} for p in ("a", "b", "a")]
    cio.send_request("POST", f"{collector.url}/api/v2/batch", {"batch": batch})

    rows = landed(collector, tmp_path)
    assert len({r["message_id"] for r in rows}) == len(rows) == 9
    assert [r["event"] for r in rows if r["type"] == "track"] == [
        "User Suppressed",
        "User Unsuppressed",
        "User Suppressed",
    ]
    assert json.loads((collector.home / "suppressions.json").read_text()) == ["u1"]


def test_a_suppressed_email_drops_every_message_that_carries_it(
    collector: CollectorProcess, tmp_path: Path
) -> None:
    cio = track_client(collector)
    cio.suppress("Jo@Example.com")
    assert cio.track("jo@example.com", "Ignored").json()["suppressed"] == 1
    # Another id with the address as its email: the same person to be, dropped too.
    assert cio.identify("u1", email="JO@example.com", plan="pro").json()["suppressed"] == 1
    answer = requests.post(
        f"{collector.url}/v1/identify",
        auth=(WRITE_KEY, ""),
        json={"userId": "u2", "traits": {"email": "jo@example.com"}},
        timeout=10,
    )
    assert answer.status_code == 200 and answer.json()["suppressed"] == 1
    group = {"userId": "u3", "groupId": "g1", "traits": {"email": "jo@example.com"}}
    answer = requests.post(  # a group's traits are the group's: kept
        f"{collector.url}/v1/group", auth=(WRITE_KEY, ""), json=group, timeout=10
    )
    assert answer.status_code == 200 and answer.json()["accepted"] == 1
    assert cio.track("u3", "Kept").json()["accepted"] == 1
    cio.unsuppress("jo@example.com")
    cio.track("jo@example.com", "Back")

    events = [(r["user_id"], r["event"]) for r in landed(collector, tmp_path) if r["event"]]
    assert events == [
        ("Jo@Example.com", "User Suppressed"),
        ("u3", "Kept"),
        ("jo@example.com", "User Unsuppressed"),
        ("jo@example.com", "Back"),
    ]
    assert json.loads((collector.home / "suppressions.json").read_text()) == []


def test_identifiers_holding_a_slash_reach_their_person(
    collector: CollectorProcess, tmp_path: Path
) -> None:
    cio = track_client(collector)  # the client sends "/" in a path as %2F
    cio.identify("team/42", plan="pro")
    cio.track("team/42", "Paid", {"n": 1})
    cio.add_device("team/42", "tok/1", "ios")
    cio.delete_device("team/42", "tok/1")
    cio.identify("a%2Fb", plan="free")  # a literal percent sign stays as written
    cio.suppress("team/42")
    assert cio.track("team/42", "Dropped").json()["suppressed"] == 1
    cio.unsuppress("team/42")

    rows = landed(collector, tmp_path)
    assert sorted((r["user_id"], r["type"], r["event"] or "") for r in rows) == sorted(
        [
            ("team/42", "identify", ""),
            ("team/42", "track", "Paid"),
            ("team/42", "track", "Device Created or Updated"),
            ("team/42", "track", "Device Deleted"),
            ("a%2Fb", "identify", ""),
            ("team/42", "track", "User Suppressed"),
            ("team/42", "track", "User Unsuppressed"),
        ]
    )
    deleted = next(r for r in rows if r["event"] == "Device Deleted")
    assert json.loads(deleted["properties"]) == {"device_id": "tok/1"}


def test_track_events_may_carry_100_kb_while_segment_messages_keep_32_kb(
    collector: CollectorProcess, tmp_path: Path
) -> None:
    cio = track_client(collector)
    big = {"notes": "x" * 60_000}  # over Segment's 32 KB, within Customer.io's 100 KB
    assert cio.track("u1", "Imported", big).json()["accepted"] == 1
    with pytest.raises(CustomerIOException, match=r"over Customer\.io's limit of 100 KB"):
        cio.track("u1", "Too big", {"notes": "x" * 102_400})
    answer = requests.post(
        f"{collector.url}/v1/track",
        auth=(WRITE_KEY, ""),
        json={"userId": "u1", "event": "Imported", "properties": big},
        timeout=10,
    )
    assert answer.status_code == 400
    assert answer.json()["error"].endswith("over the 32 KB limit (32768)")

    rows = landed(collector, tmp_path)
    assert [(r["event"], json.loads(r["properties"])) for r in rows] == [("Imported", big)]


def nudge(collector: CollectorProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NUDGE_HOME": str(collector.home), "NUDGE_CONTENT": str(collector.content)}
    return subprocess.run(
        [sys.executable, "-m", "nudge.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def run_while_serving(collector: CollectorProcess) -> None:
    """``nudge run`` while the collector serves, once it published its journal (it does so
    within a second)."""
    journal = collector.home / "landing" / "events" / ".journal"
    deadline = time.monotonic() + 30
    while list(journal.glob("*.journal")) and time.monotonic() < deadline:
        time.sleep(0.1)
    run = nudge(collector, "run")
    assert run.returncode == 0, run.stdout + run.stderr


def profile(collector: CollectorProcess, user_id: str) -> dict[str, Any]:
    shown = nudge(collector, "profile", user_id, "--json")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    return json.loads(shown.stdout)


@pytest.mark.slow
def test_a_run_finds_people_traits_and_events_sent_to_the_collector(
    collector: CollectorProcess,
) -> None:
    (collector.content / "defs.yml").write_text(
        "segments:\n  - name: pro\n    condition: {attribute: {name: plan, eq: pro}}\n"
    )
    segment = SegmentClient(WRITE_KEY, host=collector.url, sync_mode=True)
    segment.identify("u1", {"plan": "pro"}, timestamp=None)
    segment.track("u1", "Signed Up", {"source": "ads"})
    cio = track_client(collector)
    cio.identify("u2", plan="pro", email="u2@example.com")
    cio.track("u2", "Purchased", {"price": 30})

    run_while_serving(collector)
    sizes = nudge(collector, "segments")
    assert sizes.stdout.split() == ["pro", "2"], sizes.stdout + sizes.stderr
    shown = profile(collector, "u2")
    assert shown["traits"]["plan"] == "pro"
    assert [e["event"] for e in shown["recent_events"]] == ["Purchased"]
    assert shown["recent_events"][0]["properties"] == {"price": 30}


@pytest.mark.slow
def test_calls_addressed_by_email_reach_the_person_who_has_it(
    collector: CollectorProcess,
) -> None:
    cio = track_client(collector)
    cio.identify("jo@example.com", plan="free", first_name="Jo")  # nobody has it: a new person
    cio.track("jo@example.com", "Viewed", {"page": "/"})
    cio.identify("u7", email="jo@example.com", plan="pro")  # u7 takes the email: one person
    cio.track("jo@example.com", "Clicked")
    cio.track("u7", "Purchased", {"price": 30})
    run_while_serving(collector)

    shown = profile(collector, "u7")
    assert shown["merged_ids"] == ["jo@example.com"]
    assert shown["traits"] == {"email": "jo@example.com", "plan": "pro", "first_name": "Jo"}
    assert sorted(e["event"] for e in shown["recent_events"]) == ["Clicked", "Purchased", "Viewed"]
    assert profile(collector, "jo@example.com")["user_id"] == "u7"
