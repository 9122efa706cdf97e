"""Dagster's run, event-log and schedule storage on PostgreSQL, with the multiprocess executor.

NUDGE_DAGSTER_POSTGRES_URL makes the workspace's dagster.yaml keep everything in a Postgres
database (orchestration.instance). The pipeline job then runs on that instance with Dagster's
multiprocess executor, each step in a process of its own. With the DuckDB warehouse the assets
that open the file still take the "duckdb" pool one at a time, so the single-writer file is never
opened twice; with a Postgres warehouse they take no pool, and journeys and per-channel senders
run at once.
"""

from __future__ import annotations

import email
import itertools
import secrets
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import psycopg2
import pytest
from dagster._core.definitions.reconstruct import ReconstructableJob

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
from orchestration.location import LOCK_WAIT_ENV
from orchestration.multiprocess_job import multiprocess_pipeline_job
from orchestration.run_context import as_of_tag
from senders.registry import CHANNELS
from tests.conftest import SERVER

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


def pipeline_job() -> ReconstructableJob:
    """The multiprocess job, built again: Dagster keeps the last job it reconstructed in this
    process, and the graph depends on the warehouse each test sets (one step per journey on
    Postgres)."""
    job = dg.reconstructable(multiprocess_pipeline_job)
    type(job).get_definition.cache_clear()
    type(job).get_repository_definition.cache_clear()
    return job


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
            pipeline_job(),
            instance=instance,
            tags=as_of_tag(START + timedelta(hours=1)),
        )
        assert result.success
        run = instance.get_run_by_id(result.run_id)
        assert run is not None and run.is_success
        # Steps ran in processes of their own (the multiprocess executor's events).
        assert any(e.event_type_value == "STEP_WORKER_STARTED" for e in result.all_events)
        windows = step_windows(instance.all_logs(result.run_id))
    # On DuckDB the senders share the "duckdb" pool: one at a time, though ready together.
    senders = sorted(windows[f"delivery__{channel}"] for channel in CHANNELS)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(senders)), senders

    # The run and its events are rows in the Postgres database.
    with psycopg2.connect(postgres_database) as con, con.cursor() as cursor:
        cursor.execute("select count(*) from runs where run_id = %s", (result.run_id,))
        assert cursor.fetchone() == (1,)
        cursor.execute("select count(*) from event_logs where run_id = %s", (result.run_id,))
        assert cursor.fetchone()[0] > 10

    mails = [email.message_from_bytes(p.read_bytes()) for p in smtp_sink.maildir.glob("*.eml")]
    assert [m["To"] for m in mails] == ["ada@example.com"]
    # The run recorded its outcome, as a run of the code location's own executor does.
    with duckdb.connect(str(workspace.warehouse_path), read_only=True) as con:
        assert con.execute(
            "select status from nudge.runs where run_id = ?", [result.run_id]
        ).fetchall() == [("succeeded",)]


def test_a_multiprocess_run_waits_for_the_run_in_progress(
    workspace: Workspace, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One run per workspace at a time holds for the multiprocess job too: while another process
    holds the workspace's run lock, the run waits (here one second) and fails naming that run."""
    ensure_instance(workspace)
    stamp = START.isoformat() + "Z"
    land_messages(
        workspace.events_landing_dir,
        [
            {"type": "identify", "userId": "ada", "timestamp": stamp,
             "traits": {"email": "ada@example.com"}},
            {"type": "track", "userId": "ada", "event": "signed_up", "timestamp": stamp},
        ],
    )  # fmt: skip
    # The code location is loaded (under the lock) before the other run takes it: what is
    # checked is the executor's own wait.
    from orchestration.location import load_location

    load_location()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_LOCK],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        monkeypatch.setenv(LOCK_WAIT_ENV, "1")
        with dg.DagsterInstance.get() as instance:
            result = dg.execute_job(
                pipeline_job(),
                instance=instance,
                tags=as_of_tag(START + timedelta(hours=1)),
                raise_on_error=False,
            )
            errors = [
                error.to_string()
                for record in instance.all_logs(result.run_id)
                if record.dagster_event is not None
                and (error := getattr(record.dagster_event.event_specific_data, "error", None))
            ]
    finally:
        holder.communicate("", timeout=60)
    assert not result.success
    assert any(f"run (pid {holder.pid}, run other-run" in e for e in errors), errors
    # The run waited before launching any step process (not each step on loading the location).
    assert [e for e in result.all_events if e.event_type_value == "STEP_WORKER_STARTING"] == []
    assert list(smtp_sink.maildir.glob("*.eml")) == []


# Holds the run lock of the workspace NUDGE_HOME names until its standard input closes.
HOLD_THE_LOCK = """
import sys
from nudge.core.workspace import Workspace
from orchestration.run_lock import hold_run_lock
with hold_run_lock(Workspace.from_env(), "other-run"):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_a_bare_postgresql_url_is_refused_naming_the_scheme(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(DAGSTER_POSTGRES_URL_ENV, "postgresql://postgres@127.0.0.1:5432/dagster")
    with pytest.raises(InstanceSettingError, match=r"postgresql\+psycopg2://"):
        instance_config()
    monkeypatch.delenv(DAGSTER_POSTGRES_URL_ENV)
    assert "storage:" not in instance_config()


# Two journeys, each sending on two channels (email to the SMTP sink, in-app to the inbox file).
PARALLEL_CONTENT = """
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
  - name: tips_email
    channel: email
    subject: "Tips for {{ user.first_name | default('you') }}"
    html: "<p>Tips</p><a href='{{ unsubscribe_url }}'>Unsubscribe</a>"
  - {name: welcome_inbox, channel: in_app, title: "Welcome", body: "Glad you are here"}
  - {name: tips_inbox, channel: in_app, title: "Tip", body: "Try the CLI"}
journeys:
  - name: onboarding
    trigger: {segment_entered: new_signups}
    steps:
      - {id: welcome, send: {channel: email, template: welcome_email}}
      - {id: welcome_inbox, send: {channel: in_app, template: welcome_inbox}}
  - name: product_tips
    trigger: {segment_entered: new_signups}
    steps:
      - {id: tip_inbox, send: {channel: in_app, template: tips_inbox}}
      - {id: tip_email, send: {channel: email, template: tips_email}}
"""
PEOPLE = {"ada": "ada@example.com", "grace": "grace@example.com"}


@pytest.fixture
def dagster_database() -> Iterator[str]:
    """A second fresh database, for Dagster's storage (the warehouse has its own)."""
    from nudge.core.warehouse.postgres import new_database

    name = f"nudge_test_dagster_{secrets.token_hex(6)}"
    with new_database(name, SERVER) as url:
        yield url


def step_windows(records: list[dg.EventLogEntry]) -> dict[str, tuple[float, float]]:
    """(start, end) of every step of the run from its event log: from the launch of the step's
    process (which waits for the step's pool slot) to the step's success. Each step process
    then loads the code location (under its run's lock, orchestration.location), seconds per step
    on a busy machine, so the steps' own STEP_START events are spread by that."""
    starts: dict[str, float] = {}
    ends: dict[str, float] = {}
    for record in records:
        event = record.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type_value == "STEP_WORKER_STARTING":
            starts[event.step_key] = record.timestamp
        elif event.event_type_value == "STEP_SUCCESS":
            ends[event.step_key] = record.timestamp
    return {key: (starts[key], ends[key]) for key in starts if key in ends}


def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def test_journeys_and_channel_senders_run_in_parallel_on_a_postgres_warehouse(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    smtp_sink: SmtpSink,
    postgres_database: str,
    dagster_database: str,
) -> None:
    from orchestration.location import load_location

    content = tmp_path / "content"
    content.mkdir()
    (content / "definitions.yml").write_text(PARALLEL_CONTENT)
    home = tmp_path / "home"
    for name, value in {
        "NUDGE_HOME": str(home),
        "NUDGE_CONTENT": str(content),
        "NUDGE_WAREHOUSE": "postgres",
        "NUDGE_POSTGRES_URL": postgres_database,
        "DAGSTER_HOME": str(home / "dagster"),
        DAGSTER_POSTGRES_URL_ENV: dagster_database.replace("postgresql://", PSYCOPG2_SCHEME),
        "NUDGE_EMAIL_PROVIDER": "smtp",
        "NUDGE_SMTP_HOST": smtp_sink.host,
        "NUDGE_SMTP_PORT": str(smtp_sink.port),
        "NUDGE_EMAIL_FROM": "Nudge <hello@nudge.test>",
    }.items():
        monkeypatch.setenv(name, value)
    load_location.cache_clear()
    workspace = Workspace(home=home, content_dir=content).ensure()
    ensure_instance(workspace)
    stamp = START.isoformat() + "Z"
    land_messages(
        workspace.events_landing_dir,
        [
            message
            for user, address in PEOPLE.items()
            for message in (
                {"type": "identify", "userId": user, "timestamp": stamp,
                 "traits": {"email": address, "first_name": user.title()}},
                {"type": "track", "userId": user, "event": "signed_up", "timestamp": stamp},
            )
        ],
    )  # fmt: skip

    try:
        with dg.DagsterInstance.get() as instance:
            result = dg.execute_job(
                pipeline_job(),
                instance=instance,
                tags=as_of_tag(START + timedelta(hours=1)),
                # Every sender may start at once (the default is one process per core).
                run_config={"execution": {"config": {"max_concurrent": 8}}},
            )
            assert result.success
            records = instance.all_logs(result.run_id)
    finally:
        load_location.cache_clear()
    windows = step_windows(records)

    # On a server warehouse each journey is a step of its own, outside the duckdb pool.
    journeys = [windows["plan_journey_onboarding"], windows["plan_journey_product_tips"]]
    senders = {channel: windows[f"delivery__{channel}"] for channel in ("email", "in_app")}
    assert overlap(*journeys), f"journey steps did not overlap: {journeys}"
    assert overlap(senders["email"], senders["in_app"]), f"senders did not overlap: {senders}"

    # Every message went out once: in the ledger, to the SMTP server and into the inbox.
    with psycopg2.connect(postgres_database) as con, con.cursor() as cursor:
        cursor.execute(
            "select channel, status, count(*), count(distinct idempotency_key)"
            " from nudge.delivery_ledger group by 1, 2 order by 1, 2"
        )
        assert cursor.fetchall() == [("email", "sent", 4, 4), ("in_app", "sent", 4, 4)]
    mails = [email.message_from_bytes(p.read_bytes()) for p in smtp_sink.maildir.glob("*.eml")]
    assert sorted((m["To"], m["Subject"]) for m in mails) == [
        ("ada@example.com", "Tips for Ada"),
        ("ada@example.com", "Welcome, Ada"),
        ("grace@example.com", "Tips for Grace"),
        ("grace@example.com", "Welcome, Grace"),
    ]
    with sqlite3.connect(workspace.inbox_path) as inbox:
        assert inbox.execute(
            "select user_id, json_extract(content, '$.title'), count(*) from inbox_messages"
            " group by 1, 2 order by 1, 2"
        ).fetchall() == [("ada", "Tip", 1), ("ada", "Welcome", 1), ("grace", "Tip", 1),
                         ("grace", "Welcome", 1)]  # fmt: skip
