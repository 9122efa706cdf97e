"""The `nudge` command line, run as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

GOOD = """
segments:
  - name: pro
    condition: {attribute: {name: plan, eq: pro}}
templates:
  - {name: hello, channel: email, subject: "Hi", html: "<p>Hi</p>"}
journeys:
  - name: pro_welcome
    trigger: {segment_entered: pro}
    steps: [{id: hello, send: {channel: email, template: hello}}]
"""

BAD = """
segments:
  - name: pro
    condition: {attribute: {name: plan, eqq: pro}}
templates:
  - {name: hello, channel: email, subject: "Hi", html: "<p>Hi</p>"}
journeys:
  - name: pro_welcome
    trigger: {segment_entered: pros}
    steps: [{id: hello, send: {channel: email, template: hello}}]
"""


def nudge(home: Path, content: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NUDGE_HOME": str(home), "NUDGE_CONTENT": str(content)}
    return subprocess.run(
        [sys.executable, "-m", "nudge.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def content(tmp_path: Path) -> Path:
    path = tmp_path / "content"
    path.mkdir()
    return path


def test_validate_accepts_good_definitions(tmp_path: Path, content: Path) -> None:
    (content / "defs.yml").write_text(GOOD)
    result = nudge(tmp_path / "home", content, "validate")
    assert result.returncode == 0, result.stderr
    assert "1 segments, 1 journeys" in result.stdout


@pytest.mark.parametrize("command", [["validate"], ["run", "--as-of", "2026-01-01T00:00:00Z"]])
def test_bad_definitions_are_refused_naming_file_item_and_field(
    tmp_path: Path, content: Path, command: list[str]
) -> None:
    (content / "defs.yml").write_text(BAD)
    result = nudge(tmp_path / "home", content, *command)
    assert result.returncode == 2
    assert "defs.yml" in result.stderr
    assert "segment 'pro'" in result.stderr and "eqq" in result.stderr
    assert "did you mean 'eq'" in result.stderr
    assert "journey 'pro_welcome'" in result.stderr and "pros" in result.stderr
    assert not (tmp_path / "home" / "warehouse.duckdb").exists() or "run" not in command
    assert "running the pipeline" not in result.stdout  # refused before a run starts


@pytest.mark.slow
def test_ingest_run_segments_profile(tmp_path: Path, content: Path) -> None:
    (content / "defs.yml").write_text(GOOD)
    home = tmp_path / "home"
    events = tmp_path / "events.ndjson"
    events.write_text(
        "\n".join(
            [
                json.dumps(
                    {
                        "type": "identify",
                        "userId": "u1",
                        "timestamp": "2026-01-01T00:00:00Z",
                        "traits": {"plan": "pro", "email": "u1@example.com"},
                    }
                ),
                "{not json",
                json.dumps({"type": "track", "event": "x", "timestamp": "2026-01-01T00:00:00Z"}),
                json.dumps(
                    {
                        "type": "track",
                        "userId": "u1",
                        "event": "login",
                        "timestamp": "2026-01-01T00:00:01Z",
                        "properties": {"method": "sso", "attempt": {"n": 2}},
                    }
                ),
            ]
        )
    )
    ingested = nudge(home, content, "ingest", str(events))
    assert "2 accepted, 2 rejected" in ingested.stdout
    assert "line 2" in ingested.stderr and "line 3" in ingested.stderr

    env_run = nudge(home, content, "run", "--as-of", "2026-01-01T00:01:00Z")
    assert env_run.returncode == 0, env_run.stdout + env_run.stderr

    sizes = nudge(home, content, "segments")
    assert sizes.returncode == 0
    assert sizes.stdout.split() == ["pro", "1"]

    profile = nudge(home, content, "profile", "u1", "--json")
    data = json.loads(profile.stdout)
    assert data["traits"]["plan"] == "pro"
    assert data["segments"] == ["pro"]
    assert [e["event"] for e in data["recent_events"]] == ["login"]
    # properties as a JSON object, not JSON text inside JSON
    assert data["recent_events"][0]["properties"] == {"method": "sso", "attempt": {"n": 2}}
    assert data["journeys"][0]["journey"] == "pro_welcome"
    # no SMTP server listens here: the refused connections open the breaker and the email stays
    # pending for the next run (no ledger row), instead of failing
    assert data["messages"] == []
    assert "left pending for the next run" in env_run.stdout + env_run.stderr


@pytest.mark.slow
def test_profile_shows_devices_and_answers_for_a_merged_id(tmp_path: Path, content: Path) -> None:
    """What the collector lands for Customer.io device and merge_customers calls, seen through
    `nudge profile`: the secondary id answers with the person it was merged into."""
    (content / "defs.yml").write_text(GOOD)
    home = tmp_path / "home"
    at = "2026-01-01T00:00:00Z"
    messages = [
        {"type": "identify", "userId": "p1", "timestamp": at, "traits": {"plan": "pro"}},
        {"type": "identify", "userId": "s1", "timestamp": at, "traits": {"first_name": "Sam"}},
        {
            "type": "track",
            "userId": "s1",
            "event": "Device Created or Updated",
            "timestamp": at,
            "properties": {
                "device_id": "tok-1",
                "platform": "ios",
                "last_used": 1767225600,
                "attributes": {"app_version": "2.1"},
            },
        },
        {
            "type": "alias",
            "userId": "p1",
            "previousId": "s1",
            "timestamp": "2026-01-01T00:00:01Z",
            "context": {"nudge": {"merge": True}},
        },
    ]
    events = tmp_path / "events.ndjson"
    events.write_text("\n".join(json.dumps(m) for m in messages))
    assert nudge(home, content, "ingest", str(events)).returncode == 0
    run = nudge(home, content, "run", "--as-of", "2026-01-01T00:01:00Z")
    assert run.returncode == 0, run.stdout + run.stderr

    profile = nudge(home, content, "profile", "s1", "--json")
    assert profile.returncode == 0, profile.stderr
    data = json.loads(profile.stdout)
    assert data["user_id"] == "p1" and data["merged_ids"] == ["s1"]
    assert data["traits"] == {"plan": "pro", "first_name": "Sam"}
    assert data["devices"] == [
        {
            "device_id": "tok-1",
            "platform": "ios",
            "last_used_at": "2026-01-01 00:00:00",
            "attributes": {"app_version": "2.1"},
            "updated_at": "2026-01-01 00:00:00",
        }
    ]
    text = nudge(home, content, "profile", "p1")
    assert text.returncode == 0, text.stderr
    assert "devices:" in text.stdout and '"device_id": "tok-1"' in text.stdout


FAILING_SCENARIO = """
name: expects_the_wrong_member
start: "2026-01-01T00:00:00Z"
segments:
  - {name: pro, condition: {attribute: {name: plan, eq: pro}}}
steps:
  - events:
      - {type: identify, userId: u1, traits: {plan: pro}, at: "+0s"}
  - run: {at: "+1s"}
  - expect:
      segments: {pro: [u2]}
"""


BROKEN_MODEL_SCENARIO = """
name: broken_model
start: "2026-01-05T12:00:00Z"
dbt_models:
  models/marts/vip.sql: |
    {{ config(tags=['segment']) }}
    select user_id from {{ ref('dim_users') }} where no_such_column = 'vip'
steps:
  - events:
      - {type: identify, userId: u1, traits: {plan: pro}, at: "+0s"}
  - run: {at: "+1s"}
  - expect:
      segments: {vip: []}
"""


@pytest.mark.slow
def test_scenario_run_passes_the_dsl_example_and_fails_a_wrong_expectation(
    tmp_path: Path, content: Path
) -> None:
    example = Path(__file__).parent / "scenarios" / "dsl_example.yml"
    passing = nudge(tmp_path / "home", content, "scenario", "run", str(example))
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert "1 passed, 0 failed" in passing.stdout

    wrong = tmp_path / "wrong.yml"
    wrong.write_text(FAILING_SCENARIO)
    failing = nudge(tmp_path / "home", content, "scenario", "run", str(wrong))
    assert failing.returncode == 1
    assert "segment pro" in failing.stdout
    assert "expected: ['u2']" in failing.stdout and "found:    ['u1']" in failing.stdout

    broken = tmp_path / "broken.yml"
    broken.write_text(BROKEN_MODEL_SCENARIO)
    both = nudge(tmp_path / "home", content, "scenario", "run", str(broken), str(wrong))
    assert both.returncode == 1
    assert f"FAIL {broken} (broken_model): dbt build at as_of=" in both.stdout
    assert "model.nudge.vip" in both.stdout
    assert f"FAIL {wrong}" in both.stdout  # the next file still runs
    assert "0 passed, 2 failed" in both.stdout
    assert "Traceback" not in both.stdout + both.stderr
