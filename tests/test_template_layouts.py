"""Email layouts: parsed and validated with the templates, applied by the real render path, sent
through a real SMTP server, and used by the sample content."""

from __future__ import annotations

import email
import email.policy
import json
import textwrap
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

import duckdb
import pytest

from nudge.core.dsl.load import load_content_dir
from nudge.core.dsl.problems import DefinitionError, DefinitionProblem
from nudge.core.dsl.spec import Content
from nudge.core.template_checks import content_template_warnings
from nudge.devtools.smtp_sink import SmtpSink
from senders.dispatch import dispatch_pending
from senders.email import SmtpEmailProvider, SmtpSettings
from senders.templates import RenderContext, RenderError, TemplateRenderer

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 1, 1, 12, 0, 0)
LAYOUTS = """
layouts:
  - name: branded
    description: header and footer
    html: |
      <html><body><h1>Acme {{ user.plan | default('') }}</h1>
      {{ content }}
      <footer><a href="{{ preferences_url }}">Preferences</a> Acme, 1 Main Street</footer>
      </body></html>
"""
TEMPLATES = """
templates:
  - name: tips
    channel: email
    layout: branded
    subject: "Tips for {{ user.first_name }}"
    preheader: "Two tips inside"
    html: "<p>Hi {{ user.first_name }}</p><p>Press N for a new card.</p>"
  - name: written_text
    channel: email
    layout: branded
    subject: "Hello"
    html: "<p>Hello in html</p>"
    text: "Hello in text"
  - {name: plain, channel: email, subject: "Plain", html: "<p>No layout</p>"}
"""


def write_content(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "content"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    return root


def problems_of(tmp_path: Path, files: dict[str, str]) -> list[DefinitionProblem]:
    with pytest.raises(DefinitionError) as caught:
        load_content_dir(write_content(tmp_path, files))
    return caught.value.problems


def only(problems: list[DefinitionProblem], item: str, field: str) -> DefinitionProblem:
    found = [p for p in problems if p.item == item and p.field == field]
    assert len(found) == 1, "\n".join(map(str, problems))
    return found[0]


@pytest.fixture
def content(tmp_path: Path) -> Content:
    # The layout in one file, the templates using it in another: layouts are shared by name.
    return load_content_dir(
        write_content(tmp_path, {"layouts.yml": LAYOUTS, "templates.yml": TEMPLATES})
    )


def render(content: Content, name: str, **traits: object) -> dict[str, object]:
    renderer = TemplateRenderer(content.templates, content.layouts)
    context = RenderContext("u1", traits, None, "j", "s", "d1", "https://nudge.test/u/x")
    return renderer.render(name, context)


# --- parsing and validation --------------------------------------------------------------------


def test_layouts_are_parsed_and_templates_name_them(content: Content) -> None:
    (layout,) = content.layouts
    assert layout.name == "branded" and "{{ content }}" in layout.html
    assert layout.origin.file.endswith("layouts.yml")
    tips = content.template("tips")
    assert tips is not None and tips.layout == "branded"
    assert "layout" not in tips.fields  # not a field that is rendered or sent
    assert content.template("plain").layout is None  # type: ignore[union-attr]


def test_an_unknown_layout_is_an_error_naming_file_template_and_a_close_name(
    tmp_path: Path,
) -> None:
    problems = problems_of(
        tmp_path,
        {
            "layouts.yml": LAYOUTS,
            "t.yml": """
            templates:
              - {name: tips, channel: email, layout: brandd, subject: "S", html: "<p>x</p>"}
            """,
        },
    )
    problem = only(problems, "template 'tips'", "layout")
    assert problem.file.endswith("t.yml")
    assert "unknown layout 'brandd'" in problem.message
    assert "did you mean 'branded'" in problem.message


def test_a_layout_without_content_or_that_does_not_parse_is_an_error(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path,
        {
            "layouts.yml": """
            layouts:
              - {name: bare, html: "<html><body>{{ contents }}</body></html>"}
              - {name: commented, html: "<body>{# {{ content }} #}</body>"}
              - {name: broken, html: "<body>{{ content </body>"}
              - {name: no_html}
            """
        },
    )
    for name in ("bare", "commented"):
        problem = only(problems, f"layout '{name}'", "html")
        assert problem.file.endswith("layouts.yml")
        assert "has no {{ content }}" in problem.message
    assert "does not parse" in only(problems, "layout 'broken'", "html").message
    assert "missing" in only(problems, "layout 'no_html'", "html").message


def test_a_layout_on_a_channel_without_html_is_an_error(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path,
        {
            "layouts.yml": LAYOUTS,
            "t.yml": """
            templates:
              - {name: nudge_sms, channel: sms, layout: branded, body: "Hi"}
            """,
        },
    )
    problem = only(problems, "template 'nudge_sms'", "layout")
    assert problem.file.endswith("t.yml")
    assert "a sms template has none" in problem.message


def test_a_layout_name_is_unique_across_files(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, {"a.yml": LAYOUTS, "b.yml": LAYOUTS})
    assert "also defined in" in only(problems, "layout 'branded'", "name").message


def test_validate_warns_about_layout_variables_nothing_provides(tmp_path: Path) -> None:
    layouts = LAYOUTS.replace("{{ preferences_url }}", "{{ preference_url }}")
    content = load_content_dir(
        write_content(tmp_path, {"layouts.yml": layouts, "templates.yml": TEMPLATES})
    )
    warnings = [str(w) for w in content_template_warnings(content, None)]
    assert len(warnings) == 1, warnings
    assert "layout 'branded': html: variable 'preference_url' is not provided" in warnings[0]
    assert "did you mean 'preferences_url'" in warnings[0]


# --- rendering ---------------------------------------------------------------------------------


def test_the_body_goes_where_the_layout_writes_content_escaped_once(content: Content) -> None:
    out = render(content, "tips", first_name="<Ann>", plan="pro")
    html = str(out["html"])
    assert html.startswith("<html><body><h1>Acme pro</h1>")
    assert "<p>Hi &lt;Ann&gt;</p><p>Press N for a new card.</p>" in html  # not &amp;lt;
    assert html.index("Press N") < html.index("<footer>")
    assert "https://nudge.test/preferences/" in html
    assert out["subject"] == "Tips for <Ann>"


def test_a_derived_text_part_carries_the_layout_and_a_written_one_is_kept(
    content: Content,
) -> None:
    text = str(render(content, "tips", first_name="Ann", plan="pro")["text"])
    assert text.index("Acme pro") < text.index("Hi Ann") < text.index("Acme, 1 Main Street")
    assert "<p>" not in text and "{{" not in text
    assert render(content, "written_text")["text"] == "Hello in text"
    assert render(content, "plain")["html"] == "<p>No layout</p>"


def test_a_missing_variable_in_the_layout_fails_the_message_naming_it(tmp_path: Path) -> None:
    layouts = LAYOUTS.replace("{{ user.plan | default('') }}", "{{ user.plan }}")
    content = load_content_dir(
        write_content(tmp_path, {"layouts.yml": layouts, "templates.yml": TEMPLATES})
    )
    with pytest.raises(RenderError) as caught:
        render(content, "tips", first_name="Ann")
    assert caught.value.variable == "user.plan"
    assert "layout 'branded'" in str(caught.value)


def received(sink: SmtpSink) -> list[EmailMessage]:
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
        for path in sink.messages()
    ]


def test_a_dispatch_sends_the_layout_over_smtp_with_the_preheader_first_in_its_body(
    content: Content, sender_warehouse: duckdb.DuckDBPyConnection, smtp_sink: SmtpSink
) -> None:
    con = sender_warehouse
    con.execute(
        "insert into marts.dim_users values ('ada', ?, 'ada@example.com', null, null, false)",
        [json.dumps({"email": "ada@example.com", "first_name": "Ada", "plan": "team"})],
    )
    con.execute(
        """insert into nudge.outbox (idempotency_key, delivery_id, run_id, as_of, entry_id,
               journey, step, user_id, channel, template, transactional, holdout, created_at)
           values ('k1', 'd1', 'r0', ?, 'e1', 'onboarding', 'tips', 'ada', 'email', 'tips',
                   false, false, ?)""",
        [T0, T0],
    )
    provider = SmtpEmailProvider(
        SmtpSettings(host=smtp_sink.host, port=smtp_sink.port, sender="Acme <hi@mail.example>")
    )
    summary = dispatch_pending(
        con, as_of=T0, run_id="r1", content=content, providers={"email": provider}
    )
    assert summary.total("sent") == 1
    (mail,) = received(smtp_sink)
    html = mail.get_body(("html",)).get_content()
    text = mail.get_body(("plain",)).get_content()
    assert html.index("<body>") < html.index("Two tips inside") < html.index("Acme team")
    assert html.index("Acme team") < html.index("Hi Ada") < html.index("<footer>")
    assert "Acme team" in text and "Hi Ada" in text and "Acme, 1 Main Street" in text


# --- the sample content -------------------------------------------------------------------------


def test_the_sample_content_puts_every_email_in_its_layout() -> None:
    content = load_content_dir(ROOT / "content", sql_segments={"power_users"})
    assert [layout.name for layout in content.layouts] == ["acme"]
    emails = [t for t in content.templates if t.channel == "email"]
    assert emails and all(t.layout == "acme" for t in emails)
    out = render(content, "welcome_email", first_name="Ada")
    html = str(out["html"])
    assert html.startswith("<!DOCTYPE html>")
    assert html.index("Acme Boards</td>") < html.index("Hi Ada,") < html.index("1 Main Street")
