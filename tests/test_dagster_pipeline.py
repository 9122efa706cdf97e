"""The whole asset graph materialized by Dagster, delivering real email to a local SMTP server."""

from __future__ import annotations

import email
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from nudge.core.landing.writer import land_messages
from nudge.devtools.smtp_sink import SmtpSink
from orchestration.asset_keys import (
    COLLECTOR,
    LANDING_EVENTS,
    LEDGER,
    RAW_EVENTS,
    journey_key,
    model_key,
    segment_key,
    sender_key,
)
from orchestration.run_context import as_of_tag

pytestmark = pytest.mark.slow

START = datetime(2026, 3, 2, 9, 0)

CONTENT = """
segments:
  - name: new_signups
    condition:
      all:
        - performed: {event: signed_up, within: 7d}
        - attribute: {name: email, exists: true}
templates:
  - name: welcome_email
    channel: email
    subject: "Welcome, {{ user.first_name | default('there') }}"
    html: "<p>Hi {{ user.first_name | default('there') }}</p><a href='{{ unsubscribe_url }}'>Unsubscribe</a>"
  - name: tips_email
    channel: email
    subject: "Three tips"
    html: "<p>Tips for {{ user.first_name | default('you') }}</p>"
journeys:
  - name: onboarding
    trigger: {segment_entered: new_signups}
    steps:
      - {id: welcome, send: {channel: email, template: welcome_email}}
      - {id: pause, wait: 2d}
      - {id: tips, send: {channel: email, template: tips_email}}
"""


def signup(user: str, name: str, at: datetime) -> list[dict]:
    stamp = at.isoformat() + "Z"
    return [
        {
            "type": "identify",
            "userId": user,
            "timestamp": stamp,
            "traits": {"email": f"{user}@example.com", "first_name": name},
        },
        {"type": "track", "userId": user, "event": "signed_up", "timestamp": stamp},
    ]


@pytest.fixture
def workspace_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp_sink: SmtpSink) -> Path:
    from orchestration.location import load_location

    content = tmp_path / "content"
    content.mkdir()
    (content / "definitions.yml").write_text(CONTENT)
    home = tmp_path / "home"
    for name, value in {
        "NUDGE_HOME": str(home),
        "NUDGE_CONTENT": str(content),
        "NUDGE_WAREHOUSE_PATH": str(home / "warehouse.duckdb"),
        "NUDGE_EMAIL_PROVIDER": "smtp",
        "NUDGE_SMTP_HOST": smtp_sink.host,
        "NUDGE_SMTP_PORT": str(smtp_sink.port),
        "NUDGE_EMAIL_FROM": "Nudge <hello@nudge.test>",
    }.items():
        monkeypatch.setenv(name, value)
    load_location.cache_clear()
    yield home
    load_location.cache_clear()


def materialize_all(as_of: datetime) -> dg.ExecuteInProcessResult:
    from orchestration.definitions import build_definitions

    defs = build_definitions()
    return dg.materialize(
        [*defs.assets, *defs.asset_checks],
        resources=dict(defs.resources),
        instance=dg.DagsterInstance.ephemeral(),
        tags=as_of_tag(as_of),
    )


def received(sink: SmtpSink) -> list[email.message.Message]:
    return [email.message_from_bytes(p.read_bytes()) for p in sorted(sink.maildir.glob("*.eml"))]


def test_materialize_sends_email_records_ledger_and_builds_reports(
    workspace_env: Path, smtp_sink: SmtpSink
) -> None:
    messages = signup("ada", "Ada", START) + signup("bob", "Bob", START + timedelta(minutes=5))
    land_messages(workspace_env / "landing" / "events", messages)

    result = materialize_all(START + timedelta(hours=1))
    assert result.success
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {
        "raw/events",
        "marts/dim_users",
        "segments/new_signups",
        "journeys/onboarding",
        "delivery/outbox",
        "delivery/email",
        "delivery/ledger",
        "reports/rpt_messages_by_journey_step",
    } <= materialized

    # The journey checks wait until the messages are out (their steps come last).
    started = [e.step_key for e in result.all_events if e.event_type_value == "STEP_START"]
    check_steps = [i for i, key in enumerate(started) if key.endswith("_entries_consistent")]
    assert check_steps and started.index("delivery__email") < min(check_steps)

    mails = received(smtp_sink)
    assert sorted(m["To"] for m in mails) == ["ada@example.com", "bob@example.com"]
    ada = next(m for m in mails if m["To"] == "ada@example.com")
    assert ada["Subject"] == "Welcome, Ada"
    assert ada["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    with duckdb.connect(str(workspace_env / "warehouse.duckdb"), read_only=True) as con:
        ledger = con.execute(
            "select user_id, journey, step, channel, status from nudge.delivery_ledger order by 1"
        ).fetchall()
        report = con.execute(
            "select journey, step, status, messages from reports.rpt_messages_by_journey_step"
        ).fetchall()
    assert ledger == [
        ("ada", "onboarding", "welcome", "email", "sent"),
        ("bob", "onboarding", "welcome", "email", "sent"),
    ]
    assert report == [("onboarding", "welcome", "sent", 2)]

    # The same instant again: nothing is sent twice.
    assert materialize_all(START + timedelta(hours=1)).success
    assert len(received(smtp_sink)) == 2

    # Two days later the wait is over for both: the tips go out, once each.
    assert materialize_all(START + timedelta(days=2, hours=1)).success
    subjects = sorted(m["Subject"] for m in received(smtp_sink))
    assert subjects == ["Three tips", "Three tips", "Welcome, Ada", "Welcome, Bob"]


def test_asset_graph_connects_landing_to_reports(workspace_env: Path) -> None:
    from orchestration.definitions import build_definitions

    graph = build_definitions().resolve_asset_graph()
    report = model_key("reports", "rpt_messages_by_journey_step")
    upstream = graph.get(report).parent_keys
    seen: set[dg.AssetKey] = set()
    frontier = set(upstream)
    while frontier:
        key = frontier.pop()
        if key in seen:
            continue
        seen.add(key)
        frontier |= set(graph.get(key).parent_keys)
    for key in (
        COLLECTOR,
        LANDING_EVENTS,
        RAW_EVENTS,
        segment_key("new_signups"),
        journey_key("onboarding"),
        sender_key("email"),
        LEDGER,
    ):
        assert key in seen, f"{key.to_user_string()} is not upstream of the reports"
    # The collector is where the graph starts.
    assert not graph.get(COLLECTOR).parent_keys


def test_sensor_requests_a_run_for_new_landing_files_and_schedule_is_off(
    workspace_env: Path,
) -> None:
    from orchestration.defs.automation.schedules import every_five_minutes
    from orchestration.defs.automation.sensors import new_landing_files

    assert every_five_minutes.default_status == dg.DefaultScheduleStatus.STOPPED
    with dg.DagsterInstance.ephemeral() as instance:
        context = dg.build_sensor_context(instance=instance)
        assert isinstance(new_landing_files(context), dg.SkipReason)

        landed = land_messages(workspace_env / "landing" / "events", signup("ada", "Ada", START))
        result = new_landing_files(dg.build_sensor_context(instance=instance))
        assert [r.run_key for r in result.run_requests] == [landed.files[-1].name]
        assert "nudge/as_of" in result.run_requests[0].tags

        again = new_landing_files(dg.build_sensor_context(instance=instance, cursor=result.cursor))
        assert isinstance(again, dg.SkipReason)
