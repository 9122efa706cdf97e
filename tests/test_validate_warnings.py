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
