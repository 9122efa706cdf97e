"""Journeys across a merge (Customer.io's behaviour): the merged person keeps the secondary's
journey entries and deliveries, is not entered again for a journey the secondary entered, and
never gets the same step twice; `nudge profile` and journey explain show the secondary's
messages. Whole pipeline runs on a real DuckDB file with a capturing email provider."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from journeys.explain import explain_journey
from nudge.core.landing.writer import land_messages
from nudge.core.reports import user_profile
from nudge.core.workspace import Workspace
from tests.conftest import CapturedRuns

pytestmark = pytest.mark.slow

START = datetime(2026, 3, 2, 9, 0)
H = timedelta(hours=1)
D = timedelta(days=1)
CONTENT = """
templates:
  - {name: welcome, channel: email, subject: "Welcome", html: "<p>Welcome</p>"}
  - {name: tips, channel: email, subject: "Tips", html: "<p>Tips</p>"}
journeys:
  - name: onboarding
    trigger: {event: signed_up}
    reentry: never
    steps:
      - {id: hello, send: {channel: email, template: welcome}}
      - {id: pause, wait: 1d}
      - {id: later, send: {channel: email, template: tips}}
"""


def stamp(at: datetime) -> str:
    return at.isoformat() + "Z"


def identify(user: str, at: datetime) -> dict[str, Any]:
    traits = {"email": f"{user}@example.com"}
    return {"type": "identify", "userId": user, "timestamp": stamp(at), "traits": traits}


def signed_up(user: str, at: datetime) -> dict[str, Any]:
    return {"type": "track", "userId": user, "event": "signed_up", "timestamp": stamp(at)}


def merge(primary: str, secondary: str, at: datetime) -> dict[str, Any]:
    return {"type": "alias", "userId": primary, "previousId": secondary,
            "timestamp": stamp(at), "context": {"nudge": {"merge": True}}}  # fmt: skip


def ledger(workspace: Workspace) -> list[tuple]:
    with duckdb.connect(str(workspace.warehouse_path), read_only=True) as con:
        return con.execute(
            "select user_id, template, address, status from nudge.delivery_ledger"
            " order by as_of, user_id"
        ).fetchall()


def entries(workspace: Workspace) -> list[tuple]:
    with duckdb.connect(str(workspace.warehouse_path), read_only=True) as con:
        return con.execute(
            "select user_id, status, exit_reason from nudge.journey_entries order by started_at"
            ", user_id, status"
        ).fetchall()


def test_a_merged_person_keeps_the_secondarys_journey_and_gets_each_step_once(
    tmp_path: Path,
) -> None:
    runs = CapturedRuns(tmp_path, CONTENT)
    workspace, email, run = runs.workspace, runs.email, runs.run

    # s1 signs up (and is welcomed); p1 has not. q1 and r1 both sign up: two entries.
    land_messages(
        workspace.events_landing_dir,
        [
            *(identify(user, START) for user in ("p1", "s1", "q1", "r1")),
            *(signed_up(user, START) for user in ("s1", "q1", "r1")),
        ],
    )
    run(START + H)
    assert sorted(row[:2] for row in ledger(workspace)) == [
        ("q1", "welcome"), ("r1", "welcome"), ("s1", "welcome")
    ]  # fmt: skip

    # s1 becomes p1, who then signs up too; r1 becomes q1 while both are in the journey.
    land_messages(
        workspace.events_landing_dir,
        [merge("p1", "s1", START + 2 * H), signed_up("p1", START + 3 * H),
         merge("q1", "r1", START + 2 * H)],
    )  # fmt: skip
    run(START + 4 * H)
    assert len(ledger(workspace)) == 3  # nobody welcomed again
    assert entries(workspace) == [
        ("p1", "active", None),  # s1's entry, now p1's
        ("q1", "active", None),
        ("q1", "exited", "merged"),  # r1's: one entry per person goes on
    ]

    run(START + 1 * D + 2 * H)
    later = [row for row in ledger(workspace) if row[1] == "tips"]
    assert sorted(later) == [
        ("p1", "tips", "p1@example.com", "sent"),
        ("q1", "tips", "q1@example.com", "sent"),
    ]
    assert len(email.messages) == 5

    profile = user_profile(workspace, "s1")
    assert profile is not None and profile["user_id"] == "p1"
    assert [(m["user_id"], m["template"]) for m in profile["messages"]] == [
        ("s1", "welcome"),
        ("p1", "tips"),
    ]
    assert [(j["journey"], j["status"]) for j in profile["journeys"]] == [
        ("onboarding", "completed")
    ]
    explained = explain_journey(workspace, runs.content, user_id="p1", journey="onboarding")
    assert "template welcome" in explained and "template tips" in explained, explained
    # The move is in the entry's history; so is the exit of the entry that did not go on.
    assert "s1 was merged into this person" in explained, explained
    explained = explain_journey(workspace, runs.content, user_id="q1", journey="onboarding")
    assert "r1 was merged into this person" in explained, explained
    assert "(reason: merged)" in explained, explained
