"""The provider the ``http_send`` stage sends to: a bare ASGI endpoint that reads each request,
answers 202 after ``NUDGE_BENCH_PROVIDER_LATENCY`` seconds and counts what it received
(``GET /received``). Served by uvicorn in a process of its own, as a provider is a machine of its
own, so that its work does not take the sending process's interpreter lock:

    NUDGE_BENCH_PROVIDER_LATENCY=0.05 python -m uvicorn nudge.devtools.bench.slow_provider:app
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

_received = 0


async def _answer(send: Any, status: int, body: bytes = b"") -> None:
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global _received
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["method"] == "GET":
        body = str(_received).encode() if scope["path"] == "/received" else b"ok"
        await _answer(send, 200, body)
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await asyncio.sleep(float(os.environ.get("NUDGE_BENCH_PROVIDER_LATENCY", "0.05")))
    _received += 1
    await _answer(send, 202)
