"""A real local SMTP server that keeps every message it receives as a ``.eml`` file.

Used by ``make demo`` (``python -m nudge.devtools.smtp_sink --port 8025 --maildir DIR``) and by the tests,
which deliver real email to it over a socket. Addresses listed in ``refuse`` get a permanent
``550`` reply to RCPT, so tests can exercise hard bounces.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from nudge.devtools.free_port import free_port

EML_SUFFIX = ".eml"


class _MaildirHandler:
    def __init__(self, maildir: Path, refuse: Iterable[str]):
        self.maildir = maildir
        self.refuse = {address.lower() for address in refuse}

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address.lower() in self.refuse:
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        delivered_to = "".join(f"Delivered-To: {rcpt}\r\n" for rcpt in envelope.rcpt_tos)
        data = delivered_to.encode() + envelope.original_content
        _write_atomically(self.maildir, data)
        return "250 Message accepted for delivery"


def _write_atomically(maildir: Path, data: bytes) -> Path:
    """Write to a hidden temporary name in the same folder, then rename into place."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    name = f"{stamp}-{uuid.uuid4().hex}"
    tmp = maildir / f".{name}.tmp"
    final = maildir / f"{name}{EML_SUFFIX}"
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    return final


class SmtpSink:
    """An aiosmtpd server on ``host:port`` (``port=0`` picks a free one) writing to ``maildir``."""

    def __init__(self, host: str, port: int, maildir: Path, refuse: Iterable[str] = ()):
        self.host = host
        self.port = port or free_port(host)
        self.maildir = Path(maildir)
        self._handler = _MaildirHandler(self.maildir, refuse)
        self._controller: Controller | None = None

    def start(self) -> SmtpSink:
        self.maildir.mkdir(parents=True, exist_ok=True)
        self._controller = Controller(self._handler, hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def messages(self) -> list[Path]:
        """Received messages, oldest first."""
        return sorted(self.maildir.glob(f"*{EML_SUFFIX}"))


def count_messages(maildir: Path) -> int:
    return sum(1 for _ in Path(maildir).glob(f"*{EML_SUFFIX}"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m nudge.devtools.smtp_sink",
        description="Run a local SMTP server that stores every message as a .eml file.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--maildir", type=Path, required=True, help="folder for the .eml files")
    parser.add_argument(
        "--refuse",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="answer 550 to RCPT for this address (repeatable)",
    )
    args = parser.parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    sink = SmtpSink(args.host, args.port, args.maildir, refuse=args.refuse).start()
    print(f"smtp sink listening on {sink.host}:{sink.port}, writing to {sink.maildir}", flush=True)
    try:
        stop.wait()
    finally:
        sink.stop()


if __name__ == "__main__":
    main()
