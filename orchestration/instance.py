"""The Dagster instance of a workspace (``<home>/dagster``): its ``dagster.yaml``, written once.

By default Dagster keeps runs, event logs and schedules in SQLite files under ``<home>/dagster``:
one machine, one process writing at a time. With ``NUDGE_DAGSTER_POSTGRES_URL`` set when the
file is first written, all three live in that PostgreSQL database instead (dagster-postgres),
so several processes (the daemon, the web server, a multiprocess executor's steps) and several
machines share them. The file names the variable, not its value: the URL, with its password,
stays in the environment of every process that opens the instance.

The URL names its driver, ``postgresql+psycopg2://user[:password]@host[:port]/database``:
dagster-postgres is written for psycopg2, and SQLAlchemy 2.1 (which Dagster uses) picks the
psycopg 3 driver for a bare ``postgresql://``.
"""

from __future__ import annotations

import os
from pathlib import Path

from nudge.core.workspace import Workspace

DAGSTER_POSTGRES_URL_ENV = "NUDGE_DAGSTER_POSTGRES_URL"

# Every asset that opens the DuckDB file is in the "duckdb" pool: one step at a time holds it.
# The daemon looks for queued runs every second (Dagster's default is 5 s): a sensor's run is
# what turns a landed event into a message, and the wait adds to that latency.
DAGSTER_INSTANCE_CONFIG = """\
concurrency:
  pools:
    default_limit: 1
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
telemetry:
  enabled: false
"""

POSTGRES_STORAGE_CONFIG = f"""\
storage:
  postgres:
    postgres_url:
      env: {DAGSTER_POSTGRES_URL_ENV}
"""


PSYCOPG2_SCHEME = "postgresql+psycopg2://"


class InstanceSettingError(ValueError):
    """The instance's storage setting cannot work; the message says what to set instead."""


def instance_config() -> str:
    """The ``dagster.yaml`` nudge writes: Postgres storage when ``NUDGE_DAGSTER_POSTGRES_URL`` is
    set, else Dagster's default (SQLite under the instance folder)."""
    url = os.environ.get(DAGSTER_POSTGRES_URL_ENV)
    if not url:
        return DAGSTER_INSTANCE_CONFIG
    if not url.startswith(PSYCOPG2_SCHEME):
        raise InstanceSettingError(
            f"{DAGSTER_POSTGRES_URL_ENV} must start with {PSYCOPG2_SCHEME} (Dagster's Postgres "
            "storage needs the psycopg2 driver named in the URL), e.g. "
            f"{PSYCOPG2_SCHEME}postgres@127.0.0.1:5432/dagster"
        )
    return DAGSTER_INSTANCE_CONFIG + POSTGRES_STORAGE_CONFIG


def ensure_instance(workspace: Workspace) -> Path:
    """Write the workspace's ``dagster.yaml`` unless the operator already has one."""
    workspace.dagster_home.mkdir(parents=True, exist_ok=True)
    instance_config_path = workspace.dagster_home / "dagster.yaml"
    if not instance_config_path.exists():
        instance_config_path.write_text(instance_config())
    return instance_config_path
