"""GDPR across whole pipeline runs: a deleted or suppressed person gets no more messages, and
the delivery ledger forgets their address at the run after the delete."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from nudge.core.landing.writer import land_messages
from nudge.core.workspace import Workspace
from tests.conftest import CapturedRuns

pytestmark = pytest.mark.slow

START = datetime(2026, 3, 2, 9, 0)
H = timedelta(hours=1)
CONTENT = """
segments:
  - name: buyers
    condition: {performed: {event: purchase}}
templates:
  - {name: receipt, channel: email, subject: "Thanks", html: "<p>Thanks</p>"}
journeys:
  - name: receipts
    trigger: {event: purchase}
    reentry: always
    steps:
      - {id: thanks, send: {channel: email, template: receipt}}
"""


def stamp(at: datetime) -> str:
    return at.isoformat() + "Z"


def person(user: str, at: datetime) -> list[dict[str, Any]]:
    return [
        {"type": "identify", "userId": user, "timestamp": stamp(at),
         "traits": {"email": f"{user}@example.com"}},
        {"type": "track", "userId": user, "event": "purchase", "timestamp": stamp(at)},
    ]  # fmt: skip


def track(user: str, event: str, at: datetime) -> dict[str, Any]:
    return {"type": "track", "userId": user, "event": event, "timestamp": stamp(at)}


def ledger(workspace: Workspace) -> list[tuple]:
    with duckdb.connect(str(workspace.warehouse_path), read_only=True) as con:
        return con.execute(
            "select user_id, address, status from nudge.delivery_ledger order by user_id, as_of"
        ).fetchall()


def calls(workspace: Workspace, user: str) -> dict[str, list[tuple]]:
    """What the warehouse's copies of the landed calls still hold for ``user``."""
    with duckdb.connect(str(workspace.warehouse_path), read_only=True) as con:
        return {
            table: con.execute(
                f"select type, event from {table} where user_id = ? order by timestamp, type",
                [user],
            ).fetchall()
            for table in ("raw.events", "staging.stg_events")
        }


def users(workspace: Workspace) -> set[str]:
    with duckdb.connect(str(workspace.warehouse_path), read_only=True) as con:
        return {r[0] for r in con.execute("select user_id from marts.dim_users").fetchall()}


def test_delete_and_suppress_stop_messages_and_scrub_the_ledger(tmp_path: Path) -> None:
    runs = CapturedRuns(tmp_path, CONTENT)
    workspace, email, run = runs.workspace, runs.email, runs.run

    land_messages(
        workspace.events_landing_dir,
        person("ada", START)
        + person("bob", START)
        + person("cy", START)
        + [
            # An identify without an email, while someone's id is an address: it goes too.
            {"type": "identify", "userId": "ada", "timestamp": stamp(START),
             "traits": {"phone": "+44 20 7946 0000"}, "context": {"ip": "203.0.113.7"}},
            track("dee@example.com", "browse", START),
        ],
    )  # fmt: skip
    run(START + H)
    assert ledger(workspace) == [
        ("ada", "ada@example.com", "sent"),
        ("bob", "bob@example.com", "sent"),
        ("cy", "cy@example.com", "sent"),
    ]

    # A provider's report about ada's message, as the feedback stage records it.
    with duckdb.connect(str(workspace.warehouse_path)) as con:
        con.execute(
            "insert into nudge.delivery_feedback values ('fb-1', 'd-1', 'ada', 'email', "
            "'delivered', 'test', 'ada@example.com', '250 ok ada@example.com', false, ?, ?)",
            [START + H, START + H],
        )

    # ada is deleted, bob suppressed; bob's purchase while suppressed must not reach him.
    land_messages(
        workspace.events_landing_dir,
        [
            {"type": "delete", "userId": "ada", "timestamp": stamp(START + 2 * H)},
            track("bob", "User Suppressed", START + 2 * H),
            track("bob", "purchase", START + 3 * H),
        ],
    )
    run(START + 4 * H)
    assert users(workspace) == {"cy", "dee@example.com"}
    assert ledger(workspace) == [
        ("ada", None, "sent"),
        ("bob", None, "sent"),
        ("cy", "cy@example.com", "sent"),
    ]
    with duckdb.connect(str(workspace.warehouse_path), read_only=True) as con:
        assert con.execute("select address, reason from nudge.delivery_feedback").fetchall() == [
            (None, None)
        ]
    # Their calls are gone from the warehouse too, but the records of the erasure.
    for table, rows in calls(workspace, "ada").items():
        assert rows == [("delete", None)], table
    for table, rows in calls(workspace, "bob").items():
        assert rows == [("track", "User Suppressed")], table
    assert len(calls(workspace, "cy")["raw.events"]) == 2
    sent_before = len(email.messages)

    # bob is unsuppressed and buys again: a fresh profile, which gets its receipt.
    land_messages(
        workspace.events_landing_dir,
        [
            track("bob", "User Unsuppressed", START + 5 * H),
            *person("bob", START + 6 * H),
        ],
    )
    run(START + 7 * H)
    assert users(workspace) == {"bob", "cy", "dee@example.com"}
    assert ledger(workspace)[1:] == [
        ("bob", None, "sent"),
        ("bob", "bob@example.com", "sent"),
        ("cy", "cy@example.com", "sent"),
    ]
    assert len(email.messages) == sent_before + 1
    assert calls(workspace, "bob")["raw.events"] == [
        ("track", "User Suppressed"),
        ("track", "User Unsuppressed"),
        ("identify", None),
        ("track", "purchase"),
    ]


def test_a_suppression_addressed_by_email_stops_every_message_to_the_address(
    tmp_path: Path,
) -> None:
    runs = CapturedRuns(tmp_path, CONTENT)
    workspace, email, run = runs.workspace, runs.email, runs.run

    # fay takes dee's address after dee had it: dee is the person the address names.
    fay = {"type": "identify", "userId": "fay", "timestamp": stamp(START + H / 2),
           "traits": {"email": "Dee@example.com"}}  # fmt: skip
    land_messages(workspace.events_landing_dir, [*person("dee", START), fay])
    run(START + H)
    assert ledger(workspace) == [("dee", "dee@example.com", "sent")]

    land_messages(
        workspace.events_landing_dir,
        [
            track("DEE@example.com", "User Suppressed", START + 2 * H),
            track("dee", "purchase", START + 3 * H),
            track("fay", "purchase", START + 3 * H),
        ],
    )
    run(START + 4 * H)
    # dee, who has the address, is erased; fay is not, but nothing goes to the address.
    assert users(workspace) == {"fay"}
    assert ledger(workspace) == [
        ("dee", None, "sent"),
        ("fay", "Dee@example.com", "dropped"),
    ]
    # dee's calls are purged but the identify that joins the address to dee, down to the address.
    assert calls(workspace, "dee")["raw.events"] == [("identify", None)]
    with duckdb.connect(str(workspace.warehouse_path), read_only=True) as con:
        traits = con.execute("select traits from raw.events where user_id = 'dee'").fetchone()
    assert traits == ('{"email":"dee@example.com"}',)
    sent_before = len(email.messages)

    land_messages(
        workspace.events_landing_dir,
        [
            track("dee@example.com", "User Unsuppressed", START + 5 * H),
            track("fay", "purchase", START + 6 * H),
        ],
    )
    run(START + 7 * H)
    assert ledger(workspace)[-1] == ("fay", "Dee@example.com", "sent")
    assert len(email.messages) == sent_before + 1


def anonymous_calls(workspace: Workspace) -> dict[str, set[str]]:
    """The anonymous ids whose anonymous calls each copy of the landed calls still holds."""
    with duckdb.connect(str(workspace.warehouse_path), read_only=True) as con:
        return {
            table: {
                a
                for (a,) in con.execute(
                    f"select anonymous_id from {table} where user_id is null"
                ).fetchall()
            }
            for table in ("raw.events", "staging.stg_events")
        }


def test_the_anonymous_calls_stitched_to_an_erased_person_are_purged_too(tmp_path: Path) -> None:
    runs = CapturedRuns(tmp_path, CONTENT)
    workspace, run = runs.workspace, runs.run

    def browse(anonymous_id: str, at: datetime) -> dict[str, Any]:
        return {"type": "page", "anonymousId": anonymous_id, "name": "Pricing",
                "timestamp": stamp(at)}  # fmt: skip

    land_messages(
        workspace.events_landing_dir,
        [
            *(browse(a, START) for a in ("anon-1", "anon-2", "shared", "stranger")),
            # ann is stitched to anon-1 by an identify, to anon-2 by an alias; "shared" is
            # stitched to ann and to cy, who is not erased: its calls stay.
            {"type": "identify", "userId": "ann", "anonymousId": "anon-1",
             "timestamp": stamp(START + H / 4), "traits": {"email": "ann@example.com"}},
            {"type": "alias", "previousId": "anon-2", "userId": "ann",
             "timestamp": stamp(START + H / 4), "context": {"ip": "203.0.113.7"}},
            {"type": "identify", "userId": "ann", "anonymousId": "shared",
             "timestamp": stamp(START + H / 4)},
            {"type": "identify", "userId": "cy", "anonymousId": "shared",
             "timestamp": stamp(START + H / 2)},
        ],
    )  # fmt: skip
    run(START + H)
    everyone = {"anon-1", "anon-2", "shared", "stranger"}
    assert anonymous_calls(workspace) == {"raw.events": everyone, "staging.stg_events": everyone}

    land_messages(
        workspace.events_landing_dir,
        [{"type": "delete", "userId": "ann", "timestamp": stamp(START + 2 * H)}],
    )
    run(START + 3 * H)
    kept = {"shared", "stranger"}
    assert anonymous_calls(workspace) == {"raw.events": kept, "staging.stg_events": kept}
    # The calls that stitched ann's anonymous ids stay, with the ids only (the alias's context,
    # with her address, is gone).
    with duckdb.connect(str(workspace.warehouse_path), read_only=True) as con:
        links = con.execute(
            "select type, anonymous_id, previous_id, traits, context from raw.events"
            " where user_id = 'ann' order by type, anonymous_id"
        ).fetchall()
    assert links == [
        ("alias", None, "anon-2", None, None),
        ("delete", None, None, None, None),
        ("identify", "anon-1", None, None, None),
        ("identify", "shared", None, None, None),
    ]

    # An anonymous call of anon-1 from before the delete arrives late: it goes too.
    land_messages(workspace.events_landing_dir, [browse("anon-1", START + H)])
    run(START + 4 * H)
    assert anonymous_calls(workspace) == {"raw.events": kept, "staging.stg_events": kept}
