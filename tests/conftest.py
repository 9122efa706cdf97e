"""Shared fixtures: a real local SMTP server and workspace environments."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nudge.smtp_sink import SmtpSink


@pytest.fixture
def smtp_sink(tmp_path: Path) -> Iterator[SmtpSink]:
    """A real aiosmtpd server on a free port, storing what it receives as .eml files."""
    sink = SmtpSink("127.0.0.1", 0, tmp_path / "mailbox")
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture(autouse=True)
def live_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs use the live SMTP provider by default, which refuses to start without a real secret
    key and public URL (``senders.unsubscribe.require_live_settings``); tests that check that
    refusal remove them."""
    monkeypatch.setenv("NUDGE_SECRET_KEY", "test-only-secret-key-0123456789abcdef")
    monkeypatch.setenv("NUDGE_PUBLIC_URL", "https://nudge.test")
