"""A dry run reports what a run would send and skip, and leaves the workspace untouched."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from nudge.core.landing.writer import land_messages
from nudge.core.workspace import Workspace
from orchestration.dry_run import Decision, EntryChange, PlannedMessage, dry_run
from orchestration.stages import prepare_workspace, run_pipeline
from senders.capture import CapturingProvider

pytestmark = pytest.mark.slow

START = datetime(2026, 3, 2, 9, 0)
CONTENT = """
segments:
  - name: new_signups
    condition: {performed: {event: signed_up, within: 7d}}
templates:
  - {name: welcome_email, channel: email, subject: "Welcome", html: "<p>Hi</p>"}
journeys:
  - name: onboarding
    trigger: {segment_entered: new_signups}
    steps:
      - {id: welcome, send: {channel: email, template: welcome_email}}
      - {id: pause, wait: 2d}
"""


def signup(user: str, at: datetime, **traits: object) -> list[dict]:
    stamp = at.isoformat() + "Z"
    return [
        {"type": "identify", "userId": user, "timestamp": stamp,
         "traits": {"email": f"{user}@example.com", **traits}},
        {"type": "track", "userId": user, "event": "signed_up", "timestamp": stamp},
    ]  # fmt: skip


def fingerprint(workspace: Workspace) -> dict[str, tuple[str, int]]:
    """Content hash and mtime of every file of the warehouse and the landing area."""
    files = [workspace.warehouse_path, *sorted(workspace.landing_dir.rglob("*.parquet"))]
    return {
        str(p): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in files
    }


def test_dry_run_lists_sends_and_skips_without_changing_the_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    content_dir = tmp_path / "content"
    content_dir.mkdir()
    (content_dir / "definitions.yml").write_text(CONTENT)
    workspace = Workspace(home=tmp_path / "home", content_dir=content_dir)
    content, project = prepare_workspace(workspace)
    land_messages(workspace.events_landing_dir, signup("ada", START))
    run_pipeline(
        workspace, content, project, {"email": CapturingProvider("email")},
        as_of=START + timedelta(hours=1),
    )  # fmt: skip
    later = START + timedelta(hours=2)
    land_messages(
        workspace.events_landing_dir, signup("bob", later) + signup("cy", later, unsubscribed=True)
    )
    before = fingerprint(workspace)

    report = dry_run(workspace, content, START + timedelta(hours=3))

    assert report.sends == [
        PlannedMessage("bob", "onboarding", "welcome", "email", "welcome_email", "bob@example.com")
    ]
    assert report.not_sent == [
        Decision("cy", "onboarding", "welcome", "email", "welcome_email", "skipped", "unsubscribed")
    ]
    trigger = "segment_entered:new_signups:2026-03-02T12:00:00"
    assert report.entries == [
        EntryChange("bob", "onboarding", "entered", "welcome", trigger),
        EntryChange("cy", "onboarding", "entered", "welcome", trigger),
    ]
    text = report.render()
    assert "bob  onboarding/welcome  email welcome_email -> bob@example.com" in text
    assert "skipped (unsubscribed)" in text

    assert fingerprint(workspace) == before
    with duckdb.connect(str(workspace.warehouse_path), read_only=True) as con:
        assert con.execute("select user_id from nudge.delivery_ledger").fetchall() == [("ada",)]
        assert con.execute("select count(*) from nudge.journey_entries").fetchone() == (1,)
