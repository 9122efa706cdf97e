"""``nudge preview`` and ``nudge send-test`` on a workspace built by a real pipeline run: the same
rendering as the run's sends, a real SMTP server and a real HTTP stand-in for the providers, the
delivery ledger telling test sends apart, and a held warehouse explained."""

from __future__ import annotations

import email
import email.policy
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from nudge.cli.main import main
from nudge.core.landing.writer import land_messages
from nudge.core.warehouse.connection import connect
from nudge.core.workspace import Workspace
from nudge.devtools.smtp_sink import SmtpSink
from orchestration.stages import prepare_workspace, run_pipeline
from senders.capture import CapturingProvider
from senders.email import with_preheader
from tests.conftest import holding_warehouse
from tests.http_standin import Reply, always, standin

pytestmark = pytest.mark.slow

START = datetime(2026, 3, 2, 9, 0)
CONTENT = """
layouts:
  - name: branded
    html: "<html><body><h1>Acme</h1>{{ content }}<footer>Acme, 1 Main Street
      <a href='{{ preferences_url }}'>Preferences</a></footer></body></html>"
segments:
  - name: new_signups
    condition: {performed: {event: signed_up, within: 7d}}
templates:
  - name: welcome_email
    channel: email
    layout: branded
    subject: "Welcome, {{ user.first_name }}"
    preheader: "Start here"
    html: "<p>Hi {{ user.first_name }}, you are on {{ user.plan }}</p>"
  - {name: order_email, channel: email, subject: "Order {{ event.order_id }}", html: "<p>Thanks</p>"}
  - {name: hello_sms, channel: sms, body: "Hi {{ user.first_name }}"}
  - name: crm_hook
    channel: webhook
    url: "https://example.invalid/hook"
    json: {id: "{{ user.id }}", plan: "{{ user.plan | default('none') }}"}
journeys:
  - name: onboarding
    trigger: {segment_entered: new_signups}
    steps:
      - {id: welcome, send: {channel: email, template: welcome_email}}
"""


def identify(user: str, **traits: object) -> dict:
    return {"type": "identify", "userId": user, "timestamp": START.isoformat() + "Z",
            "traits": traits}  # fmt: skip


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, list]:
    """One pipeline run: ada signs up and gets the welcome email (captured); bob has no email
    and no plan."""
    tmp = tmp_path_factory.mktemp("preview")
    (tmp / "content").mkdir()
    (tmp / "content" / "definitions.yml").write_text(CONTENT)
    workspace = Workspace(home=tmp / "home", content_dir=tmp / "content")
    content, project = prepare_workspace(workspace)
    land_messages(
        workspace.events_landing_dir,
        [
            identify("ada", email="ada@example.com", first_name="Ada", plan="pro"),
            {"type": "track", "userId": "ada", "event": "signed_up",
             "timestamp": START.isoformat() + "Z"},
            identify("bob", first_name="Bob"),
        ],
    )  # fmt: skip
    email_provider = CapturingProvider("email")
    with pytest.MonkeyPatch.context() as env:  # signed links as in the tests (conftest.py)
        env.setenv("NUDGE_SECRET_KEY", "test-only-secret-key-0123456789abcdef")
        env.setenv("NUDGE_PUBLIC_URL", "https://nudge.test")
        run_pipeline(
            workspace, content, project, {"email": email_provider}, as_of=START + timedelta(hours=1)
        )
    return workspace, email_provider.messages


@pytest.fixture(autouse=True)
def restored_environment() -> Iterator[None]:
    """``main`` points the environment at the workspace it runs in; put it back afterwards."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def nudge(built: tuple[Workspace, list], *args: str) -> int:
    workspace = built[0]
    return main(["--home", str(workspace.home), "--content", str(workspace.content_dir), *args])


def ledger(workspace: Workspace, where: str = "true") -> list[tuple]:
    with connect(workspace.warehouse_path, read_only=True) as con:
        return con.execute(
            "select status, provider, journey, step, template, address, user_id "
            f"from nudge.delivery_ledger where {where} order by queued_at"
        ).fetchall()


# --- preview -----------------------------------------------------------------------------------


def test_preview_shows_what_the_run_sent_in_its_layout(built, capsys) -> None:
    assert nudge(built, "preview", "welcome_email", "--user", "ada", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    (sent,) = [m for m in built[1] if m.user_id == "ada"]
    assert shown["journey"] == "onboarding" and shown["step"] == "welcome"
    assert shown["headers"]["Subject"] == sent.content["subject"] == "Welcome, Ada"
    assert shown["headers"]["To"] == "ada@example.com"
    assert shown["headers"]["List-Unsubscribe"] == f"<{sent.content['unsubscribe_url']}>"
    # The same html the run handed over (the preheader goes first in the body, as in the MIME).
    assert shown["content"]["html"] == with_preheader(sent.content["html"], "Start here")
    assert "<h1>Acme</h1><p>Hi Ada, you are on pro</p><footer>" in shown["content"]["html"]
    assert shown["content"]["text"] == sent.content["text"]
    assert "Hi Ada, you are on pro" in shown["content"]["text"]


def test_preview_prints_headers_text_and_writes_the_html(built, capsys) -> None:
    assert nudge(built, "preview", "welcome_email", "--user", "ada") == 0
    out = capsys.readouterr().out
    assert "as journey onboarding step welcome sends it" in out
    for line in ("Subject: Welcome, Ada", "To: ada@example.com", "Preheader: Start here"):
        assert line in out.splitlines()
    assert "Hi Ada, you are on pro" in out and "Acme, 1 Main Street" in out
    (html_line,) = [line for line in out.splitlines() if line.startswith("HTML: ")]
    html = Path(html_line.removeprefix("HTML: ")).read_text()
    assert "Start here" in html and "<h1>Acme</h1>" in html and "<html>" not in out

    assert nudge(built, "preview", "welcome_email", "--user", "ada", "--html") == 0
    assert "<h1>Acme</h1><p>Hi Ada, you are on pro</p>" in capsys.readouterr().out


def test_preview_data_and_event_fill_what_the_warehouse_lacks(built, capsys) -> None:
    assert nudge(built, "preview", "welcome_email", "--user", "bob") == 1
    err = capsys.readouterr().err
    assert "undefined variable 'user.plan'" in err and "welcome_email" in err

    assert (
        nudge(built, "preview", "welcome_email", "--user", "bob", "--data", '{"plan": "team"}') == 0
    )
    out = capsys.readouterr().out
    assert "Hi Bob, you are on team" in out
    assert "the user has no email address" in out

    assert nudge(built, "preview", "order_email", "--user", "ada") == 1
    assert "undefined variable 'event.order_id'" in capsys.readouterr().err
    assert (
        nudge(built, "preview", "order_email", "--user", "ada", "--event", '{"order_id": "o-7"}')
        == 0
    )
    assert "Subject: Order o-7" in capsys.readouterr().out.splitlines()


def test_preview_other_channels_print_their_fields(built, capsys) -> None:
    assert nudge(built, "preview", "hello_sms", "--user", "ada") == 0
    assert "body: Hi Ada" in capsys.readouterr().out.splitlines()
    assert nudge(built, "preview", "crm_hook", "--user", "ada", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["content"]["json"] == {"id": "ada", "plan": "pro"}
    assert shown["content"]["url"] == "https://example.invalid/hook"


def test_preview_unknown_template_or_user_is_one_sentence_and_exit_1(built, capsys) -> None:
    assert nudge(built, "preview", "welcome_mail", "--user", "ada") == 1
    err = capsys.readouterr().err
    assert "no template 'welcome_mail'" in err and "did you mean 'welcome_email'" in err
    assert "Traceback" not in err
    assert nudge(built, "preview", "welcome_email", "--user", "nobody") == 1
    assert "no user 'nobody'" in capsys.readouterr().err


def test_bad_json_arguments_are_refused(built, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        nudge(built, "preview", "welcome_email", "--user", "ada", "--data", "[1]")
    assert exited.value.code == 2
    assert "expected a JSON object" in capsys.readouterr().err


# --- send-test ---------------------------------------------------------------------------------


def received(sink: SmtpSink) -> list[EmailMessage]:
    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
        for p in sink.messages()
    ]


@pytest.fixture
def smtp_env(smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch) -> SmtpSink:
    monkeypatch.setenv("NUDGE_SMTP_HOST", smtp_sink.host)
    monkeypatch.setenv("NUDGE_SMTP_PORT", str(smtp_sink.port))
    monkeypatch.setenv("NUDGE_EMAIL_FROM", "Acme <hello@mail.example>")
    return smtp_sink


def test_send_test_over_smtp_is_marked_and_recorded_as_a_test(built, smtp_env, capsys) -> None:
    workspace = built[0]
    sent_before = ledger(workspace, "status = 'sent'")
    code = nudge(built, "send-test", "welcome_email", "--to", "me@example.org", "--user", "ada")
    out = capsys.readouterr().out
    assert code == 0, out
    assert "sent a test of welcome_email to me@example.org" in out
    (mail,) = received(smtp_env)
    assert mail["Subject"] == "[TEST] Welcome, Ada"
    assert mail["To"] == "me@example.org"
    assert "<h1>Acme</h1><p>Hi Ada, you are on pro</p>" in mail.get_body(("html",)).get_content()
    tests = ledger(workspace, "template = 'welcome_email' and status like 'test_%'")
    assert tests == [("test_sent", "smtp", None, None, "welcome_email", "me@example.org", "ada")]
    assert ledger(workspace, "status = 'sent'") == sent_before  # not a journey send


def test_send_test_without_a_user_uses_the_data_given(built, smtp_env, capsys) -> None:
    data = '{"first_name": "Zed", "plan": "trial"}'
    assert (
        nudge(built, "send-test", "welcome_email", "--to", "zed@example.org", "--data", data) == 0
    )
    (mail,) = received(smtp_env)
    assert mail["Subject"] == "[TEST] Welcome, Zed"
    assert nudge(built, "send-test", "welcome_email", "--to", "zed@example.org") == 1
    assert "undefined variable 'user.first_name'" in capsys.readouterr().err
    assert len(received(smtp_env)) == 1


def test_send_test_refused_by_the_server_prints_why_and_exits_1(
    built, tmp_path, monkeypatch, capsys
) -> None:
    with SmtpSink("127.0.0.1", 0, tmp_path / "refusing", refuse=["no@example.org"]) as sink:
        monkeypatch.setenv("NUDGE_SMTP_HOST", sink.host)
        monkeypatch.setenv("NUDGE_SMTP_PORT", str(sink.port))
        code = nudge(built, "send-test", "welcome_email", "--to", "no@example.org", "--user", "ada")
    assert code == 1
    err = capsys.readouterr().err
    assert "failed: recipient refused: 550" in err
    rows = ledger(built[0], "address = 'no@example.org'")
    assert [row[0] for row in rows] == ["test_failed"]


def test_send_test_through_an_http_provider(built, monkeypatch, capsys) -> None:
    monkeypatch.setenv("NUDGE_EMAIL_PROVIDER", "sendgrid")
    monkeypatch.setenv("NUDGE_SENDGRID_API_KEY", "test-key")
    with standin(always(Reply(202, headers={"X-Message-Id": "sg-42"}))) as server:
        monkeypatch.setenv("NUDGE_SENDGRID_BASE_URL", server.url)
        code = nudge(built, "send-test", "welcome_email", "--to", "sg@example.org", "--user", "ada")
    assert code == 0, capsys.readouterr().err
    assert "provider message id sg-42" in capsys.readouterr().out
    (request,) = server.requests
    body = request.json()
    assert request.headers["authorization"] == "Bearer test-key"
    assert body["subject"] == "[TEST] Welcome, Ada"
    assert body["personalizations"][0]["to"] == [{"email": "sg@example.org"}]
    assert ledger(built[0], "address = 'sg@example.org'")[0][:2] == ("test_sent", "sendgrid")

    with standin(always(Reply(500, "upstream broke"))) as server:
        monkeypatch.setenv("NUDGE_SENDGRID_BASE_URL", server.url)
        code = nudge(
            built, "send-test", "welcome_email", "--to", "sg2@example.org", "--user", "ada"
        )
    assert code == 1
    assert "500" in capsys.readouterr().err
    assert ledger(built[0], "address = 'sg2@example.org'")[0][0] == "test_failed"


def test_send_test_on_a_channel_without_a_provider_says_what_to_set(built, capsys) -> None:
    assert nudge(built, "send-test", "hello_sms", "--to", "+15550100", "--user", "ada") == 2
    err = capsys.readouterr().err
    assert "no provider is configured for channel sms" in err and "NUDGE_SMS_PROVIDER" in err
    assert ledger(built[0], "channel = 'sms'") == []


def test_a_held_warehouse_is_explained_and_nothing_is_sent(built, smtp_env, monkeypatch) -> None:
    workspace = built[0]
    with holding_warehouse(workspace.warehouse_path):
        env = {**os.environ, "NUDGE_WAREHOUSE_WAIT_SECONDS": "0.5"}
        base = [sys.executable, "-m", "nudge.cli", "--home", str(workspace.home),
                "--content", str(workspace.content_dir)]  # fmt: skip
        preview = subprocess.run(
            [*base, "preview", "welcome_email", "--user", "ada"],
            capture_output=True, text=True, env=env,
        )  # fmt: skip
        test = subprocess.run(
            [*base, "send-test", "welcome_email", "--to", "me@example.org"],
            capture_output=True, text=True, env=env,
        )  # fmt: skip
    assert preview.returncode == 3, preview.stderr
    assert "holds the warehouse" in preview.stderr and "try again" in preview.stderr
    assert test.returncode == 3, test.stderr
    assert "nothing was sent" in test.stderr and "holds the warehouse" in test.stderr
    assert received(smtp_env) == []


def test_send_test_to_a_suppressed_address_is_refused(built, smtp_env, capsys) -> None:
    workspace = built[0]
    with connect(workspace.warehouse_path) as con:
        con.execute(
            "insert into nudge.suppressed_addresses values ('email', 'gone@example.org', "
            "'hard bounce', now())"
        )
    code = nudge(built, "send-test", "welcome_email", "--to", "Gone@example.org", "--user", "ada")
    assert code == 1
    assert "is suppressed (hard bounce), so nothing was sent" in capsys.readouterr().err
    assert received(smtp_env) == []
    assert ledger(workspace, "lower(address) = 'gone@example.org'") == []


@pytest.mark.parametrize("to", ["Ann <ann@example.org>", "a@example.org, b@example.org", "ann"])
def test_send_test_to_more_or_less_than_one_email_address_is_refused(
    built, smtp_env, capsys, to: str
) -> None:
    """A display name or a list would reach every address in it (SMTP and the providers' APIs
    take lists) while the suppression check above looked at the whole text."""
    code = nudge(built, "send-test", "welcome_email", "--to", to, "--user", "ada")
    assert code == 2
    assert f"--to {to!r} is not one email address, so nothing was sent" in capsys.readouterr().err
    assert received(smtp_env) == []


def test_send_test_needs_only_its_own_channels_provider_settings(
    built, monkeypatch, capsys
) -> None:
    # The email provider (smtp, live) would refuse to start without a secret key and public URL;
    # an sms test through the capture provider does not need them.
    monkeypatch.delenv("NUDGE_SECRET_KEY")
    monkeypatch.delenv("NUDGE_PUBLIC_URL")
    monkeypatch.setenv("NUDGE_SMS_PROVIDER", "capture")
    assert nudge(built, "send-test", "hello_sms", "--to", "+15550100", "--user", "ada") == 0
    assert "sent a test of hello_sms to +15550100 via test" in capsys.readouterr().out
    assert ledger(built[0], "channel = 'sms'")[0][:2] == ("test_sent", "test")
