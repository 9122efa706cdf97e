"""A lean HTTP/1.1 load generator for the collector stage: pre-built requests, keep-alive
connections, asyncio on uvloop. Lean so that the client, which shares the machine's cores with
the server, takes as little of them as it can.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass

import uvloop


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    latencies: list[float]  # seconds, one per request, sorted
    failures: int  # answers other than 200

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        return self.latencies[min(len(self.latencies) - 1, int(p / 100 * len(self.latencies)))]


def http_request(path: str, body: bytes, authorization: str) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: {authorization}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def _run(
    host: str, port: int, requests: list[bytes], connections: int, rate: float | None
) -> LoadResult:
    latencies: list[float] = []
    failures = 0
    pending: Iterator[int] = iter(range(len(requests)))
    started = time.perf_counter()

    async def worker() -> None:
        nonlocal failures
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for index in pending:
                due = started + index / rate if rate else time.perf_counter()
                if rate and (wait := due - time.perf_counter()) > 0:
                    await asyncio.sleep(wait)
                status = await _exchange(reader, writer, requests[index])
                # From when the request was due: a late start counts (no coordinated omission).
                latencies.append(time.perf_counter() - due)
                failures += status != 200
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    seconds = time.perf_counter() - started
    return LoadResult(len(requests), seconds, sorted(latencies), failures)


def run_load(
    host: str, port: int, requests: list[bytes], *, connections: int, rate: float | None = None
) -> LoadResult:
    """Send every request over ``connections`` keep-alive connections, as fast as answers come
    (``rate`` None) or at ``rate`` requests per second."""
    return uvloop.run(_run(host, port, requests, connections, rate))
