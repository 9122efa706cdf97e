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
