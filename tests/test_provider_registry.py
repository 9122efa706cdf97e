"""The provider registry: one choice per channel from the environment, each variable checked once
with a sentence naming it; the Dagster resources built from that parse; SMS segment counting."""

from __future__ import annotations

import dagster as dg
import pytest

from nudge.core.workspace import Workspace
from orchestration.resources import check_delivery_settings, delivery_resources
from senders.channels.in_app import InboxProvider
from senders.channels.twilio import TwilioSettings, TwilioSmsProvider
from senders.registry import CHANNELS, choose_providers
from senders.sms_segments import count_segments
from tests.test_senders_http import WEBHOOK_SECRET

TWILIO = {
    "NUDGE_SMS_PROVIDER": "twilio",
    "NUDGE_TWILIO_ACCOUNT_SID": "AC1",
    "NUDGE_TWILIO_AUTH_TOKEN": "twilio-secret",
    "NUDGE_TWILIO_FROM": "+15550000000",
}


def test_defaults_are_smtp_email_and_the_inbox_and_nothing_else():
    chosen = choose_providers({})
    assert {c: choice.spec.name for c, choice in chosen.items()} == {
        "email": "smtp",
        "in_app": "inbox",
    }


def test_every_channel_has_a_capture_provider():
    env = {f"NUDGE_{c.upper()}_PROVIDER": "capture" for c in CHANNELS}
    assert {c: p.spec.name for c, p in choose_providers(env).items()} == dict.fromkeys(
        CHANNELS, "capture"
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"NUDGE_SMS_PROVIDER": "nexmo"},
         r"^NUDGE_SMS_PROVIDER='nexmo' is not a sms provider; expected 'twilio', 'capture', 'none'"),
        ({**TWILIO, "NUDGE_TWILIO_FROM": ""},
         r"^NUDGE_TWILIO_FROM is not set; the twilio sms provider needs it"),
        ({**TWILIO, "NUDGE_TWILIO_BASE_URL": "api.twilio.com"},
         r"^NUDGE_TWILIO_BASE_URL='api.twilio.com' is not an http\(s\) URL"),
        ({**TWILIO, "NUDGE_TWILIO_CONCURRENCY": "many"},
         r"^NUDGE_TWILIO_CONCURRENCY='many' is not a whole number"),
        ({"NUDGE_WEBHOOK_PROVIDER": "http", "NUDGE_WEBHOOK_SECRET": "whsec_!!"},
         r"^NUDGE_WEBHOOK_SECRET is not a Standard Webhooks secret"),
        ({"NUDGE_PUSH_PROVIDER": "fcm", "NUDGE_FCM_PROJECT_ID": "p",
          "NUDGE_FCM_CREDENTIALS_FILE": "/nonexistent/key.json"},
         r"^NUDGE_FCM_CREDENTIALS_FILE='/nonexistent/key.json' cannot be read as JSON"),
        ({"NUDGE_EMAIL_PROVIDER": "sendgrid"},
         r"^NUDGE_SENDGRID_API_KEY is not set; the sendgrid email provider needs it"),
    ],
)  # fmt: skip
def test_a_wrong_variable_is_named_in_one_sentence(env, message):
    with pytest.raises(ValueError, match=message):
        choose_providers(env)


def test_the_run_preflight_checks_every_channel(monkeypatch):
    monkeypatch.setenv("NUDGE_SLACK_PROVIDER", "incoming_webhook")
    monkeypatch.setenv("NUDGE_SLACK_RATE_LIMIT", "0")
    with pytest.raises(ValueError, match=r"^NUDGE_SLACK_RATE_LIMIT='0' is not a number of"):
        check_delivery_settings()


def test_resources_hold_the_parse_and_keep_secrets_as_env_vars(monkeypatch, tmp_path):
    for name, value in {**TWILIO, "NUDGE_TWILIO_CONCURRENCY": "4"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("NUDGE_WEBHOOK_PROVIDER", "http")
    monkeypatch.setenv("NUDGE_WEBHOOK_SECRET", WEBHOOK_SECRET)
    resources = delivery_resources()

    assert set(resources) == set(CHANNELS)
    sms = resources["sms"]
    assert (sms.provider, sms.concurrency, sms.account_sid) == ("twilio", 4, "AC1")
    # a secret is the variable's name in the resource's config, never its value
    assert "twilio-secret" not in repr(sms) and "whsec_" not in repr(resources["webhook"])
    assert resources["push"].provider == "none"

    workspace = Workspace(home=tmp_path, content_dir=tmp_path)
    with dg.build_resources(resources) as configured:  # as a run gets them: EnvVars resolved
        provider = configured.sms.open_provider(workspace)
        assert configured.push.open_provider(workspace) is None
        inbox = configured.in_app.open_provider(workspace)
    assert isinstance(provider, TwilioSmsProvider)
    assert provider.settings == TwilioSettings.from_env()  # the same parse, secrets resolved
    assert isinstance(inbox, InboxProvider) and inbox.path == tmp_path / "inbox.sqlite3"


@pytest.mark.parametrize(
    ("body", "encoding", "segments"),
    [
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("{" * 80, "GSM-7", 1),  # extension characters take two septets
        ("{" * 81, "GSM-7", 2),
        ("é" * 160, "GSM-7", 1),  # in the GSM-7 alphabet
        ("ê" * 70, "UCS-2", 1),  # not in it
        ("ê" * 71, "UCS-2", 2),
        ("🎉" * 35, "UCS-2", 1),  # outside the basic plane: two code units each
        ("🎉" * 36, "UCS-2", 2),
    ],
)
def test_sms_segments(body, encoding, segments):
    counted = count_segments(body)
    assert (counted.encoding, counted.segments) == (encoding, segments)
