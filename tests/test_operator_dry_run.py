"""``nudge run --dry-run`` as an operator reads it: a summary per journey first, then details, and
each held message with the policy that truly holds it."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from nudge.core.landing.writer import land_messages
from nudge.core.warehouse.connection import connect
from nudge.core.warehouse.journey_controls import set_paused
from nudge.core.workspace import Workspace
from orchestration.dry_run import Decision, WindowWait, dry_run
from orchestration.stages import prepare_workspace, run_pipeline
from senders.capture import CapturingProvider

pytestmark = pytest.mark.slow

NIGHT = datetime(2026, 3, 2, 22, 0)  # inside the quiet hours below (UTC)
CONTENT = """
policies:
  quiet_hours: {from: "21:00", to: "08:00", default_timezone: UTC}
segments:
  - name: new_signups
    condition: {performed: {event: signed_up, within: 7d}}
templates:
  - {name: welcome_email, channel: email, subject: "Welcome", html: "<p>Hi</p>"}
journeys:
  - name: onboarding
    trigger: {segment_entered: new_signups}
    steps: [{id: welcome, send: {channel: email, template: welcome_email}}]
  - name: drip
    trigger: {segment_entered: new_signups}
    steps: [{id: first, send: {channel: email, template: welcome_email}}]
  - name: office_hours
    trigger: {segment_entered: new_signups}
    steps:
      - {id: office, window: {from: "09:00", to: "17:00"}}
      - {id: hello, send: {channel: email, template: welcome_email}}
"""


def signup(user: str, at: datetime) -> list[dict]:
    stamp = at.isoformat() + "Z"
    return [
        {"type": "identify", "userId": user, "timestamp": stamp,
         "traits": {"email": f"{user}@example.com"}},
        {"type": "track", "userId": user, "event": "signed_up", "timestamp": stamp},
    ]  # fmt: skip


def test_held_messages_name_their_policy_and_the_summary_comes_first(tmp_path: Path) -> None:
    content_dir = tmp_path / "content"
    content_dir.mkdir()
    (content_dir / "definitions.yml").write_text(CONTENT)
    workspace = Workspace(home=tmp_path / "home", content_dir=content_dir)
    content, project = prepare_workspace(workspace)
    land_messages(workspace.events_landing_dir, signup("ada", NIGHT - timedelta(minutes=30)))
    email = {"email": CapturingProvider("email")}
    run_pipeline(workspace, content, project, email, as_of=NIGHT)  # both held: quiet hours
    with connect(workspace.warehouse_path) as con:
        set_paused(con, "drip", paused=True, at=NIGHT)

    report = dry_run(workspace, content, NIGHT + timedelta(hours=1))

    assert report.sends == []
    assert report.not_sent == [
        Decision("ada", "drip", "first", "email", "welcome_email", "held",
                 "journey paused: decided again at the next run"),
        Decision("ada", "onboarding", "welcome", "email", "welcome_email", "held",
                 "quiet hours: decided again at the next run"),
    ]  # fmt: skip
    assert report.window_waits == [
        WindowWait("ada", "office_hours", "office", datetime(2026, 3, 3, 9, 0))
    ]
    lines = report.render().splitlines()
    assert lines[1] == "per journey:"
    assert lines[2].startswith("  drip: no entries changing; would send nothing; 1 held (journey")
    assert lines[3] == (
        "  office_hours: no entries changing; would send nothing; 1 waiting for window office"
    )
    assert lines[4].startswith("  onboarding: ")
    assert "1 held (quiet hours" in lines[4]
    assert lines.index("would send 0 messages:") > 4
    assert "  ada  office_hours/office: window opens 2026-03-03T09:00:00Z" in lines
