"""A time limit on a request's line and headers, which uvicorn does not have.

uvicorn's ``timeout_keep_alive`` only runs between requests and stops at a request's first
byte; neither it, ``limit_concurrency`` nor httptools' parser bounds how long the headers take,
so a client sending them a byte a second (slowloris) holds its connection for ever, and enough
such clients hold every file descriptor. This protocol gives a request's line and headers
``header_seconds`` from the connection's start (or the request's first byte, on a kept-alive
connection), then answers 408 and closes. The body has its own limit (``Limits.body_seconds``,
``collector.bodies``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline on the request line and headers."""

    header_seconds: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_deadline is None:  # a kept-alive connection's next request
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def _arm(self) -> None:
        self._header_deadline = self.loop.call_later(self.header_seconds, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing():
            return
        reason = f"the request's headers did not arrive within {self.header_seconds:g} seconds"
        self.transport.write(
            b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
            + f"content-length: {len(reason)}\r\nconnection: close\r\n\r\n{reason}".encode()
        )
        self.transport.close()


def header_timeout_protocol(seconds: float) -> type[HeaderTimeoutProtocol]:
    """The protocol class for uvicorn's ``http`` setting, with ``seconds`` for the headers."""
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_seconds": seconds})
