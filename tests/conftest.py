"""Shared fixtures: a real local SMTP server and workspace environments."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from nudge.smtp_sink import SmtpSink


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def unused_port() -> int:
    return free_port()


@pytest.fixture
def smtp_sink(tmp_path: Path) -> Iterator[SmtpSink]:
    """A real aiosmtpd server on a free port, storing what it receives as .eml files."""
    sink = SmtpSink("127.0.0.1", free_port(), tmp_path / "mailbox")
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()
