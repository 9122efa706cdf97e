"""Shared fixtures: a real local SMTP server and workspace environments."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests
import uvicorn
from playwright.sync_api import Browser, sync_playwright

from nudge.core.warehouse.schema import ensure_tables
from nudge.devtools.free_port import free_port
from nudge.devtools.smtp_sink import SmtpSink

# dbt's debug log file (logs/dbt.log) is for a user whose build failed; a failed build in a test
# says what failed in its DbtBuildError. Writing it costs about 0.4 s of CPU per scenario.
os.environ.setdefault("DBT_LOG_LEVEL_FILE", "none")

CHROMIUM = Path("/usr/bin/chromium")
SCENARIO_DIR = Path(__file__).parent / "scenarios"
# The local PostgreSQL server (its `postgres` database) that tests make databases on.
SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
SCENARIO_SUFFIXES = (".yml", ".yaml")


def _sigint_not_ignored() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


# Popen options that start a command as a shell starts it in the foreground: in a process group
# of its own, SIGINT not ignored (a test runner's workers may ignore it), so that Ctrl-C
# (SIGINT to the group) reaches it and every process it starts.
AT_A_TERMINAL: dict[str, Any] = {"start_new_session": True, "preexec_fn": _sigint_not_ignored}


def scenario_files(prefix: str = "") -> list[Path]:
    """The scenario files of tests/scenarios/ whose names start with ``prefix``, ``.yml`` and
    ``.yaml`` alike."""
    return sorted(
        p
        for p in SCENARIO_DIR.iterdir()
        if p.suffix in SCENARIO_SUFFIXES and p.name.startswith(prefix)
    )


@pytest.fixture
def smtp_sink(tmp_path: Path) -> Iterator[SmtpSink]:
    """A real aiosmtpd server on a free port, storing what it receives as .eml files."""
    sink = SmtpSink("127.0.0.1", 0, tmp_path / "mailbox")
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture
def sender_warehouse(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB file with nudge's own tables and a stand-in ``marts.dim_users`` (the one mart the
    dispatcher reads), for sender tests that need no dbt build."""
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    ensure_tables(connection)
    connection.execute(
        """create schema marts;
           create table marts.dim_users (user_id varchar, traits json, email varchar,
               phone varchar, timezone varchar, unsubscribed boolean)"""
    )
    yield connection
    connection.close()


@pytest.fixture(autouse=True)
def live_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs use the live SMTP provider by default, which refuses to start without a real secret
    key and public URL (``senders.unsubscribe.require_live_settings``); tests that check that
    refusal remove them."""
    monkeypatch.setenv("NUDGE_SECRET_KEY", "test-only-secret-key-0123456789abcdef")
    monkeypatch.setenv("NUDGE_PUBLIC_URL", "https://nudge.test")


class CollectorProcess:
    """``nudge serve`` as a real process on a free loopback port, over its own workspace."""

    def __init__(self, home: Path, content: Path, env: dict[str, str]) -> None:
        self.home, self.content, self.env = home, content, env
        content.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        env = {**os.environ, **self.env, "NUDGE_HOME": str(self.home)}
        env["NUDGE_CONTENT"] = str(self.content)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "nudge.cli", "serve", "--port", str(self.port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nudge serve exited: {self.process.stdout.read()}")
            try:
                if requests.get(f"{self.url}/health", timeout=1).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError("nudge serve did not answer /health within 30 s")

    def stop(self, sig: int = signal.SIGTERM) -> str:
        """Stop the process with ``sig``; return what it printed."""
        assert self.process is not None
        self.process.send_signal(sig)
        output, _ = self.process.communicate(timeout=30)
        self.process = None
        return output


COLLECTOR_ENV = {"NUDGE_WRITE_KEYS": "test-write-key", "NUDGE_TRACK_CREDENTIALS": "site:api-key"}


@contextmanager
def holding_warehouse(path: Path) -> Iterator[None]:
    """Another process holds the DuckDB file at ``path`` open for writing until the block ends
    (as a pipeline run does)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(path)!r}); "
         "print('holding', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        yield
    finally:
        holder.kill()
        holder.wait()


@contextmanager
def running_collector(home: Path, content: Path, env: dict[str, str]) -> Iterator[CollectorProcess]:
    """``nudge serve`` over ``home`` and ``content`` with ``env``, stopped when the block ends."""
    server = CollectorProcess(home, content, env)
    server.start()
    try:
        yield server
    finally:
        if server.process is not None:
            server.stop()


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[CollectorProcess]:
    """A running collector accepting write key ``test-write-key`` and Track ``site:api-key``."""
    with running_collector(tmp_path / "home", tmp_path / "content", COLLECTOR_ENV) as server:
        yield server


class CapturedRuns:
    """A workspace under ``root`` whose content is ``definitions``, run by ``run(as_of)``
    through the whole pipeline with email captured in ``email``."""

    def __init__(self, root: Path, definitions: str) -> None:
        from nudge.core.workspace import Workspace
        from orchestration.stages import prepare_workspace
        from senders.capture import CapturingProvider

        content_dir = root / "content"
        content_dir.mkdir()
        (content_dir / "definitions.yml").write_text(definitions)
        self.workspace = Workspace(home=root / "home", content_dir=content_dir)
        self.content, self.project = prepare_workspace(self.workspace)
        self.email = CapturingProvider("email")

    def run(self, as_of: datetime) -> None:
        from orchestration.stages import run_pipeline

        run_pipeline(self.workspace, self.content, self.project, {"email": self.email}, as_of=as_of)


@pytest.fixture(scope="session")
def postgres_server() -> None:
    """The local PostgreSQL server answers (checked once per worker); a test using this fixture
    is skipped, saying so, when it does not."""
    import psycopg2

    try:
        psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres").close()
    except psycopg2.OperationalError as error:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 is not reachable: {error}")


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """The URL of a fresh database on the local PostgreSQL server, dropped afterwards."""
    from nudge.core.warehouse.postgres import new_database
    from nudge.core.warehouse.settings import PostgresUnreachable

    with ExitStack() as stack:
        try:
            url = stack.enter_context(new_database(f"nudge_test_{secrets.token_hex(6)}", SERVER))
        except PostgresUnreachable as error:
            pytest.skip(f"PostgreSQL at 127.0.0.1:5432 is not reachable: {error}")
        yield url


@pytest.fixture
def asgi_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[object], str]]:
    """Starts an ASGI app under a real uvicorn server on a free loopback port, in a thread, and
    returns its base URL; ``NUDGE_PUBLIC_URL`` names it from the start, so signed links point
    there."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("NUDGE_PUBLIC_URL", base)
    started: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app: object) -> str:
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        started.append((server, thread))
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "the server did not start within 10 s"
            time.sleep(0.05)
        return base

    yield start
    for server, thread in started:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def browser() -> Iterator[Browser]:
    """A real headless Chromium (Debian's) for the tests of the web pages."""
    assert CHROMIUM.exists(), "Debian's chromium is missing: `make test` installs it (make browser)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        yield browser
        browser.close()


def postgres_marks(stem: str, fast: set[str]) -> tuple[pytest.MarkDecorator, ...]:
    """A scenario file's marks on Postgres: none in the fast suite, ``slow`` for the rest."""
    return () if stem in fast else (pytest.mark.slow,)
