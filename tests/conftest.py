"""Shared fixtures: a real local SMTP server and workspace environments."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from nudge.core.warehouse.schema import ensure_tables
from nudge.devtools.smtp_sink import SmtpSink


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


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """The URL of a fresh database on the local PostgreSQL server, dropped afterwards."""
    import psycopg2

    from nudge.core.warehouse.postgres import create_database, drop_database

    name = f"nudge_test_{secrets.token_hex(6)}"
    try:
        url = create_database(name, "postgresql://postgres@127.0.0.1:5432/postgres")
    except psycopg2.OperationalError as error:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 is not reachable: {error}")
    try:
        yield url
    finally:
        drop_database(name, url)
