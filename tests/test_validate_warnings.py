"""`nudge validate` warns about events, properties and traits the data has never seen."""

from __future__ import annotations

from pathlib import Path

import pytest

from nudge.cli.main import main
from nudge.core.checked_content import load_workspace_content
from nudge.core.landing.loader import load_new_files
from nudge.core.landing.writer import land_messages
from nudge.core.segments.data_checks import workspace_data_warnings
from nudge.core.warehouse.connection import connect
from nudge.core.workspace import Workspace

CONTENT = """
segments:
  - name: buyers
    condition:
      all:
        - performed: {event: order_complete}
        - performed: {event: order_completed, where: [{property: amout, gt: 10}, {property: amount, gt: 1}]}
        - not: {attribute: {name: plann, eq: pro}}
        - attribute: {name: email, exists: true}
templates:
  - {name: hi, channel: in_app, title: "Hi", body: "Hi"}
journeys:
  - name: thanks
    trigger: {event: {name: signed_upp}}
    exit_when: {performed: {event: logged_in}}
    steps: [{id: hi, send: {channel: in_app, template: hi}}]
"""


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    content = tmp_path / "content"
    content.mkdir()
    (content / "segments.yml").write_text(CONTENT)
    return Workspace(home=tmp_path / "home", content_dir=content).ensure()


def load(workspace: Workspace) -> None:
    land_messages(
        workspace.events_landing_dir,
        [
            {
                "type": "identify",
                "userId": "u1",
                "traits": {"email": "a@example.com", "plan": "pro"},
            },
            {
                "type": "track",
                "userId": "u1",
                "event": "order_completed",
                "properties": {"amount": 5},
            },
            {"type": "track", "userId": "u1", "event": "signed_up"},
            {"type": "track", "userId": "u1", "event": "logged_in"},
        ],
    )
    with connect(workspace.warehouse_path) as con:
        load_new_files(con, workspace.events_landing_dir)


def test_unseen_names_warn_with_suggestions(workspace: Workspace) -> None:
    load(workspace)
    file = str(workspace.content_dir / "segments.yml")
    warnings = [
        str(w) for w in workspace_data_warnings(workspace, load_workspace_content(workspace))
    ]
    assert warnings == [
        f"warning: {file}: segment 'buyers': condition.all[0].performed.event: event "
        "'order_complete' never seen in the data (did you mean 'order_completed'?)",
        f"warning: {file}: segment 'buyers': condition.all[1].performed.where[0].property: "
        "property 'amout' never seen on event 'order_completed' (did you mean 'amount'?)",
        f"warning: {file}: segment 'buyers': condition.all[2].not.attribute.name: trait 'plann' "
        "never seen in the data (did you mean 'plan'?)",
        f"warning: {file}: journey 'thanks': trigger.event.name: event 'signed_upp' never seen "
        "in the data (did you mean 'signed_up'?)",
    ]


def test_no_warehouse_or_no_events_means_no_warnings(workspace: Workspace) -> None:
    content = load_workspace_content(workspace)
    assert workspace_data_warnings(workspace, content) == []
    with connect(workspace.warehouse_path) as con:
        load_new_files(con, workspace.events_landing_dir)  # creates the tables, loads nothing
    assert workspace_data_warnings(workspace, content) == []


def test_validate_prints_warnings_and_still_succeeds(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    load(workspace)
    args = ["--home", str(workspace.home), "--content", str(workspace.content_dir), "validate"]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("1 segments, 1 journeys, 1 templates, 0 topics: all valid")
    assert len(lines) == 5
    assert lines[1].startswith("warning: ") and "did you mean 'order_completed'?" in lines[1]


SENDS = """
segments:
  - name: everyone_new
    condition: {performed: {event: signed_up, within: 7d}}
templates:
  - {name: hi_sms, channel: sms, body: "Hi"}
  - {name: crm, channel: webhook, url: "https://example.invalid/hook"}
  - {name: tip, channel: in_app, title: "Tip"}
  - {name: hello, channel: email, subject: "Hello", html: "<p>Hi</p>"}
  - name: receipt
    channel: email
    subject: "Order {{ event.order_id }}"
    html: "<p>{{ event.amount }} {{ event.currency | default('USD') }}</p>
      {% if event.coupon is defined %}{{ event.coupon }}{% endif %}"
journeys:
  - name: welcome
    trigger: {segment_entered: everyone_new}
    steps:
      - {id: text, send: {channel: sms, template: hi_sms}}
      - {id: hook, send: {channel: webhook, template: crm}}
      - {id: inbox, send: {channel: in_app, template: tip}}
      - {id: mail, send: {channel: email, template: hello}}
      - {id: receipt, send: {channel: email, template: receipt}}
  - name: after_order
    trigger: {event: {name: order_completed}}
    steps:
      - {id: receipt, send: {channel: email, template: receipt}}
"""


@pytest.fixture
def sends_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    for channel in ("EMAIL", "SMS", "PUSH", "WEBHOOK", "SLACK", "IN_APP"):
        monkeypatch.delenv(f"NUDGE_{channel}_PROVIDER", raising=False)
    content = tmp_path / "content"
    content.mkdir()
    (content / "journeys.yml").write_text(SENDS)
    return Workspace(home=tmp_path / "home", content_dir=content).ensure()


def validate_lines(workspace: Workspace, capsys: pytest.CaptureFixture[str]) -> list[str]:
    args = ["--home", str(workspace.home), "--content", str(workspace.content_dir), "validate"]
    assert main(args) == 0
    return capsys.readouterr().out.splitlines()[1:]


def test_validate_warns_about_sends_on_channels_without_a_provider(
    sends_workspace: Workspace, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    file = str(sends_workspace.content_dir / "journeys.yml")
    provider_warnings = [
        line for line in validate_lines(sends_workspace, capsys) if "provider" in line
    ]
    # email (smtp) and in_app (the inbox) have a provider by default; sms and webhook do not.
    assert provider_warnings == [
        f"warning: {file}: journey 'welcome': steps[0].send.channel: step 'text' sends sms but "
        "no sms provider is configured, so its messages stay pending; set NUDGE_SMS_PROVIDER "
        "(twilio or capture)",
        f"warning: {file}: journey 'welcome': steps[1].send.channel: step 'hook' sends webhook "
        "but no webhook provider is configured, so its messages stay pending; set "
        "NUDGE_WEBHOOK_PROVIDER (http or capture)",
    ]
    monkeypatch.setenv("NUDGE_SMS_PROVIDER", "capture")
    monkeypatch.setenv("NUDGE_EMAIL_PROVIDER", "none")
    lines = [line for line in validate_lines(sends_workspace, capsys) if "provider" in line]
    assert [(line.split(": ")[2], line.split(": ")[3]) for line in lines] == [
        ("journey 'welcome'", "steps[1].send.channel"),
        ("journey 'welcome'", "steps[3].send.channel"),
        ("journey 'welcome'", "steps[4].send.channel"),
        ("journey 'after_order'", "steps[0].send.channel"),
    ]
    assert "set NUDGE_EMAIL_PROVIDER (smtp or sendgrid or postmark or capture)" in lines[1]
    monkeypatch.setenv("NUDGE_SMS_PROVIDER", "carrier_pigeon")
    lines = [line for line in validate_lines(sends_workspace, capsys) if "provider" in line]
    assert lines == [
        "warning: providers not checked: NUDGE_SMS_PROVIDER='carrier_pigeon' is not a sms "
        "provider; expected 'twilio', 'capture', 'none'"
    ]


def test_validate_warns_about_event_properties_a_send_step_cannot_have(
    sends_workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    file = str(sends_workspace.content_dir / "journeys.yml")
    lines = [line for line in validate_lines(sends_workspace, capsys) if "reads event." in line]
    # Only the segment-triggered journey: its entries carry no event. The reads with a default
    # or an `is defined` test are fine.
    assert lines == [
        f"warning: {file}: journey 'welcome': steps[4].send.template: template 'receipt' reads "
        f"event.{prop}, but a segment_entered trigger starts no event, so every message fails "
        f"to render; use an event trigger or write event.{prop} | default(...)"
        for prop in ("amount", "order_id")
    ]
    land_messages(
        sends_workspace.events_landing_dir,
        [
            {"type": "track", "userId": "u1", "event": "order_completed",
             "properties": {"order_id": "o-1"}},
            {"type": "track", "userId": "u1", "event": "refund_issued",
             "properties": {"amount": 5}},
        ],
    )  # fmt: skip
    with connect(sends_workspace.warehouse_path) as con:
        load_new_files(con, sends_workspace.events_landing_dir)
    lines = [line for line in validate_lines(sends_workspace, capsys) if "reads event." in line]
    # With data: amount was seen, but only on refund_issued, not on the trigger order_completed.
    assert lines[2:] == [
        f"warning: {file}: journey 'after_order': steps[0].send.template: template 'receipt' "
        "reads event.amount, but property 'amount' was never seen on event 'order_completed', "
        "which starts this journey (only on other events)"
    ]
    assert len(lines) == 3
