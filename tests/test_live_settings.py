"""Live sending needs a real secret key and public URL; no public key signs anything."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nudge.devtools.smtp_sink import SmtpSink
from senders.unsubscribe import (
    InvalidToken,
    MissingLiveSettings,
    require_live_settings,
    unsubscribe_url,
    verify_token,
)

# The key earlier versions signed with whenever NUDGE_SECRET_KEY was unset (public in the source).
OLD_DEVELOPMENT_KEY = "nudge-development-secret-do-not-use-in-production"
HOW_TO = "set NUDGE_SECRET_KEY to a random secret of at least 32 characters"


def forged_token(user_id: str) -> str:
    payload = json.dumps({"u": user_id, "t": None}, separators=(",", ":")).encode()
    signature = hmac.new(OLD_DEVELOPMENT_KEY.encode(), payload, hashlib.sha256).digest()
    return ".".join(base64.urlsafe_b64encode(p).rstrip(b"=").decode() for p in (payload, signature))


@pytest.mark.parametrize("key", [None, "a-real-secret-key-of-enough-length-42"])
def test_a_token_forged_with_the_old_development_key_does_not_verify(monkeypatch, key):
    if key is None:
        monkeypatch.delenv("NUDGE_SECRET_KEY")
    else:
        monkeypatch.setenv("NUDGE_SECRET_KEY", key)
    with pytest.raises(InvalidToken):
        verify_token(forged_token("victim"))
    own = unsubscribe_url("u1").rsplit("/", 1)[1]
    assert verify_token(own) == ("u1", None, None)  # this process's own links still verify


@pytest.mark.parametrize(
    ("key", "url", "problem"),
    [
        (None, "https://nudge.example", "NUDGE_SECRET_KEY is not set"),
        (OLD_DEVELOPMENT_KEY, "https://nudge.example", "the public development key"),
        ("short", "https://nudge.example", "shorter than 32 characters"),
        ("k" * 40, None, "NUDGE_PUBLIC_URL is not set"),
        ("k" * 40, "nudge.example", "is not an http(s) URL"),
    ],
)
def test_live_settings_refused_with_the_variable_and_how_to_set_it(monkeypatch, key, url, problem):
    for name, value in (("NUDGE_SECRET_KEY", key), ("NUDGE_PUBLIC_URL", url)):
        if value is None:
            monkeypatch.delenv(name)
        else:
            monkeypatch.setenv(name, value)
    with pytest.raises(MissingLiveSettings) as refused:
        require_live_settings()
    assert problem in str(refused.value) and HOW_TO in str(refused.value)
    assert "NUDGE_PUBLIC_URL to the https:// address" in str(refused.value)


@pytest.mark.slow
def test_a_live_smtp_run_without_the_secret_refuses_to_send(tmp_path: Path, smtp_sink: SmtpSink):
    content = tmp_path / "content"
    content.mkdir()
    (content / "defs.yml").write_text(
        """
segments: [{name: pro, condition: {attribute: {name: plan, eq: pro}}}]
templates: [{name: hello, channel: email, subject: "Hi", html: "<p>Hi</p>"}]
journeys:
  - {name: welcome, trigger: {segment_entered: pro}, steps: [{id: hi, send: {channel: email, template: hello}}]}
"""
    )
    events = tmp_path / "events.ndjson"
    identify = {"type": "identify", "userId": "u1", "timestamp": "2026-01-01T00:00:00Z"}
    events.write_text(json.dumps({**identify, "traits": {"plan": "pro", "email": "u1@ex.com"}}))
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("NUDGE_SECRET_KEY", "NUDGE_PUBLIC_URL", "NUDGE_EMAIL_PROVIDER")
    }
    env |= {
        "NUDGE_HOME": str(tmp_path / "home"),
        "NUDGE_CONTENT": str(content),
        "NUDGE_SMTP_HOST": smtp_sink.host,
        "NUDGE_SMTP_PORT": str(smtp_sink.port),
    }

    def nudge(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "nudge.cli", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)

    assert nudge("ingest", str(events)).returncode == 0
    run = nudge("run", "--as-of", "2026-01-01T00:01:00Z")

    # refused before any stage runs: one sentence, no traceback, no run, nothing sent
    assert run.returncode == 2
    assert run.stderr.startswith("error: ") and "Traceback" not in run.stderr + run.stdout
    assert "NUDGE_SECRET_KEY is not set and NUDGE_PUBLIC_URL is not set" in run.stderr
    assert HOW_TO in run.stderr
    assert run.stdout == ""
    assert smtp_sink.messages() == []


def test_the_dagster_definitions_load_without_the_secrets_and_preflight_still_refuses(
    tmp_path: Path,
):
    """The UI must open on a workspace with no secrets set; sending is what refuses."""
    env = {k: v for k, v in os.environ.items() if k not in ("NUDGE_SECRET_KEY", "NUDGE_PUBLIC_URL")}
    env |= {"NUDGE_HOME": str(tmp_path / "home"), "NUDGE_CONTENT": str(tmp_path / "content")}
    (tmp_path / "content").mkdir()
    code = (
        "import orchestration.definitions as d; d.defs.resolve_all_asset_keys()\n"
        "from orchestration.resources import check_delivery_settings\n"
        "try:\n    check_delivery_settings()\nexcept Exception as e:\n    print(type(e).__name__)"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "MissingLiveSettings"
