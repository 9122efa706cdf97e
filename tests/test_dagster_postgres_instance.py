"""Dagster's run, event-log and schedule storage on PostgreSQL, with the multiprocess executor.

NUDGE_DAGSTER_POSTGRES_URL makes the workspace's dagster.yaml keep everything in a Postgres
database (orchestration.instance). The pipeline job then runs on that instance with Dagster's
multiprocess executor, each step in a process of its own; the assets that open the DuckDB file
still take the "duckdb" pool one at a time, so the single-writer file is never opened twice.
"""

from __future__ import annotations

import email
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import psycopg2
import pytest

from nudge.core.landing.writer import land_messages
from nudge.core.workspace import Workspace
from nudge.devtools.smtp_sink import SmtpSink
from orchestration.instance import (
    DAGSTER_POSTGRES_URL_ENV,
    PSYCOPG2_SCHEME,
    InstanceSettingError,
    ensure_instance,
    instance_config,
)
from orchestration.multiprocess_job import multiprocess_pipeline_job
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
    html: "<p>Hi</p><a href='{{ unsubscribe_url }}'>Unsubscribe</a>"
journeys:
  - name: onboarding
    trigger: {segment_entered: new_signups}
    steps:
      - {id: welcome, send: {channel: email, template: welcome_email}}
"""


@pytest.fixture
def workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp_sink: SmtpSink, postgres_database: str
) -> Workspace:
    from orchestration.location import load_location

    content = tmp_path / "content"
    content.mkdir()
    (content / "definitions.yml").write_text(CONTENT)
    home = tmp_path / "home"
    for name, value in {
        "NUDGE_HOME": str(home),
        "NUDGE_CONTENT": str(content),
        "NUDGE_WAREHOUSE_PATH": str(home / "warehouse.duckdb"),
        "DAGSTER_HOME": str(home / "dagster"),
        DAGSTER_POSTGRES_URL_ENV: postgres_database.replace("postgresql://", PSYCOPG2_SCHEME),
        "NUDGE_EMAIL_PROVIDER": "smtp",
        "NUDGE_SMTP_HOST": smtp_sink.host,
        "NUDGE_SMTP_PORT": str(smtp_sink.port),
        "NUDGE_EMAIL_FROM": "Nudge <hello@nudge.test>",
    }.items():
        monkeypatch.setenv(name, value)
    load_location.cache_clear()
    yield Workspace(home=home, content_dir=content).ensure()
    load_location.cache_clear()


def test_pipeline_runs_multiprocess_on_a_postgres_instance(
    workspace: Workspace, smtp_sink: SmtpSink, postgres_database: str
) -> None:
    written = ensure_instance(workspace).read_text()
    assert f"env: {DAGSTER_POSTGRES_URL_ENV}" in written
    assert "127.0.0.1" not in written  # the URL stays in the environment

    stamp = START.isoformat() + "Z"
    land_messages(
        workspace.events_landing_dir,
        [
            {
                "type": "identify",
                "userId": "ada",
                "timestamp": stamp,
                "traits": {"email": "ada@example.com", "first_name": "Ada"},
            },
            {"type": "track", "userId": "ada", "event": "signed_up", "timestamp": stamp},
        ],
    )
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        result = dg.execute_job(
            dg.reconstructable(multiprocess_pipeline_job),
            instance=instance,
            tags=as_of_tag(START + timedelta(hours=1)),
        )
        assert result.success
        run = instance.get_run_by_id(result.run_id)
        assert run is not None and run.is_success
        # Steps ran in processes of their own (the multiprocess executor's events).
        assert any(e.event_type_value == "STEP_WORKER_STARTED" for e in result.all_events)

    # The run and its events are rows in the Postgres database.
    with psycopg2.connect(postgres_database) as con, con.cursor() as cursor:
        cursor.execute("select count(*) from runs where run_id = %s", (result.run_id,))
        assert cursor.fetchone() == (1,)
        cursor.execute("select count(*) from event_logs where run_id = %s", (result.run_id,))
        assert cursor.fetchone()[0] > 10

    mails = [email.message_from_bytes(p.read_bytes()) for p in smtp_sink.maildir.glob("*.eml")]
    assert [m["To"] for m in mails] == ["ada@example.com"]


def test_a_bare_postgresql_url_is_refused_naming_the_scheme(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(DAGSTER_POSTGRES_URL_ENV, "postgresql://postgres@127.0.0.1:5432/dagster")
    with pytest.raises(InstanceSettingError, match=r"postgresql\+psycopg2://"):
        instance_config()
    monkeypatch.delenv(DAGSTER_POSTGRES_URL_ENV)
    assert "storage:" not in instance_config()
