"""The collector stage's floor: a bare ASGI endpoint that only reads and parses the same bodies
and appends them to a file with the same fsync policy (one fdatasync per group of concurrent
requests), answering 200 once they are durable. Served by uvicorn like the collector:

    NUDGE_BENCH_FLOOR_FILE=/tmp/floor.log python -m uvicorn nudge.devtools.bench.collector_floor:app
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson

_ANSWER = b'{"success":true}'
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"16")]


class GroupAppender:
    """Bodies waiting while a write runs go together into the next write and fdatasync."""

    def __init__(self, path: str) -> None:
        self.file = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.thread = ThreadPoolExecutor(1)
        self.bodies: list[bytes] = []
        self.waiters: list[asyncio.Future[None]] = []
        self.flushing: asyncio.Task[None] | None = None

    def _write(self, bodies: list[bytes]) -> None:
        os.write(self.file, b"\n".join(bodies) + b"\n")
        os.fdatasync(self.file)

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self.waiters:
            bodies, waiters = self.bodies, self.waiters
            self.bodies, self.waiters = [], []
            await loop.run_in_executor(self.thread, self._write, bodies)
            for waiter in waiters:
                waiter.set_result(None)

    async def append(self, body: bytes) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self.bodies.append(body)
        self.waiters.append(waiter)
        if self.flushing is None or self.flushing.done():
            self.flushing = asyncio.create_task(self._flush())
        await waiter


_appender: GroupAppender | None = None


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global _appender
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if _appender is None:
        _appender = GroupAppender(os.environ["NUDGE_BENCH_FLOOR_FILE"])
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks)
    orjson.loads(body)
    await _appender.append(body)
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _ANSWER})
