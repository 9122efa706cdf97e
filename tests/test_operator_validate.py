"""`nudge validate` warns about template variables that nothing provides, with a "did you mean"."""

from __future__ import annotations

from pathlib import Path

import pytest

from nudge.cli.main import main
from nudge.core.landing.loader import load_new_files
from nudge.core.landing.writer import land_messages
from nudge.core.template_checks import TEMPLATE_VARIABLES
from nudge.core.warehouse.connection import connect
from nudge.core.workspace import Workspace
from senders.templates import RenderContext

CONTENT = """
templates:
  - name: hello
    channel: email
    subject: "Hi {{ usr.first_name }}"
    html: >-
      {% set greeting = 'Hello' %}<p>{{ greeting }} {{ user.first_name | default('there') }},
      {{ user.frist_name }} {{ user.id }} {{ event['amout'] }} {{ event.amount }} {{ step }}</p>
"""


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    content = tmp_path / "content"
    content.mkdir()
    (content / "templates.yml").write_text(CONTENT)
    return Workspace(home=tmp_path / "home", content_dir=content).ensure()


def validate(workspace: Workspace, capsys: pytest.CaptureFixture[str]) -> list[str]:
    args = ["--home", str(workspace.home), "--content", str(workspace.content_dir), "validate"]
    assert main(args) == 0
    return [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning")]


def test_an_unknown_variable_warns_even_before_any_data(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    file = workspace.content_dir / "templates.yml"
    assert validate(workspace, capsys) == [
        f"warning: {file}: template 'hello': subject: variable 'usr' is not provided to"
        " templates (did you mean 'user'?); they get " + ", ".join(TEMPLATE_VARIABLES)
    ]


def test_with_data_traits_and_event_properties_are_checked_too(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    land_messages(
        workspace.events_landing_dir,
        [
            {"type": "identify", "userId": "u1", "traits": {"first_name": "Ada"}},
            {"type": "track", "userId": "u1", "event": "paid", "properties": {"amount": 5}},
        ],
    )
    with connect(workspace.warehouse_path) as con:
        load_new_files(con, workspace.events_landing_dir)
    warnings = validate(workspace, capsys)
    assert len(warnings) == 3, warnings
    assert "variable 'usr'" in warnings[0]
    assert warnings[1].endswith(
        "html: user.frist_name: trait 'frist_name' never seen in the data"
        " (did you mean 'first_name'?)"
    )
    assert warnings[2].endswith(
        "html: event.amout: property 'amout' never seen on any event (did you mean 'amount'?)"
    )


def test_the_list_of_template_variables_is_what_the_renderer_gives() -> None:
    context = RenderContext("u1", {}, None, "j", "s", "d", "https://example.com/u")
    assert set(context.variables()) == set(TEMPLATE_VARIABLES)


def test_a_segment_name_longer_than_postgres_allows_is_refused_there_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    content = tmp_path / "content"
    content.mkdir()
    name = "customers_on_the_professional_plan_who_signed_up_this_quarter_bb"  # 64 characters
    (content / "segments.yml").write_text(
        f"segments:\n  - {{name: {name}, condition: {{attribute: {{name: plan, eq: pro}}}}}}\n"
    )
    args = ["--home", str(tmp_path / "home"), "--content", str(content), "validate"]
    assert main(args) == 0  # DuckDB: no limit
    capsys.readouterr()
    monkeypatch.setenv("NUDGE_WAREHOUSE", "postgres")
    assert main(args) == 2
    assert (
        f"segment '{name}': name: 64 characters, and postgres table names are at most 63:"
        " shorten it" in capsys.readouterr().err
    )
