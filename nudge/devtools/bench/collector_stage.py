"""The collector stage: ``nudge serve`` against its floor under the same load.

Both servers run as their own process under uvicorn on loopback, over a scratch workspace; the
load generator (``http_load``) runs in the bench process, sharing the two cores with them, as
an application on the same machine would. Three loads, each on the collector and on the floor
(``collector_floor``: parse and group-committed append only):

- ``collector_single``: single-event ``POST /v1/track`` requests as fast as answers come;
- ``collector_batch``: ``POST /v1/batch`` with 100 messages each, as fast as answers come;
- ``collector_at_1000``: single-event requests sent at 1,000 per second (latency at that rate).

Every message is a distinct track call (its own messageId). Latency counts from when a request
was due to its answer; p50/p99 are in ``info.collector``, with each server's CPU time per event
(read from ``/proc`` around each load): on a machine shared with other work the CPU a server
spends is disturbed far less than the seconds it takes, so the CPU ratio is the steadier one.
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Any

import orjson

from nudge.devtools.bench.http_load import LoadResult, http_request, run_load
from nudge.devtools.bench.server_process import cpu_seconds, server_process
from nudge.devtools.free_port import free_port

WRITE_KEY = "bench-write-key"
AUTHORIZATION = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
CONNECTIONS = 32
SINGLE_REQUESTS = 10_000
BATCHES = 500
BATCH_SIZE = 100
RATE = 1_000.0
RATE_SECONDS = 5


def _message(n: int) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": f"user-{n % 5000}",
        "event": "Order Completed",
        "messageId": f"bench-{n}",
        "timestamp": "2026-12-01T10:00:00Z",
        "properties": {"order_id": f"o-{n}", "total": 42.5, "currency": "EUR", "items": 3},
        "context": {"library": {"name": "analytics-python", "version": "2.3.3"}},
    }


def single_requests(count: int, first: int = 0) -> list[bytes]:
    return [
        http_request("/v1/track", orjson.dumps(_message(first + n)), AUTHORIZATION)
        for n in range(count)
    ]


def batch_requests(count: int, size: int, first: int = 0) -> list[bytes]:
    return [
        http_request(
            "/v1/batch",
            orjson.dumps({"batch": [_message(first + b * size + n) for n in range(size)]}),
            AUTHORIZATION,
        )
        for b in range(count)
    ]


def collector_server(root: Path, port: int) -> Any:
    """``nudge serve`` over a new workspace under ``root`` (no definitions)."""
    (root / "content").mkdir(parents=True, exist_ok=True)
    return server_process(
        [sys.executable, "-m", "nudge.cli", "serve", "--port", str(port)],
        {
            "NUDGE_HOME": str(root / "home"),
            "NUDGE_CONTENT": str(root / "content"),
            "NUDGE_WRITE_KEYS": WRITE_KEY,
        },
        port,
    )


def floor_server(scratch: Path, port: int) -> Any:
    return server_process(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "nudge.devtools.bench.collector_floor:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        {"NUDGE_BENCH_FLOOR_FILE": str(scratch / "collector-floor.log")},
        port,
    )


def summary(
    result: LoadResult, events_per_request: int, cpu: float | None = None
) -> dict[str, Any]:
    """What one load measured; ``cpu`` is the CPU seconds the server spent during it."""
    events = result.requests * events_per_request
    return {
        "requests": result.requests,
        "events": events,
        "seconds": round(result.seconds, 3),
        "requests_per_second": round(result.per_second),
        "events_per_second": round(result.per_second * events_per_request),
        "p50_ms": round(result.percentile(50) * 1000, 2),
        "p99_ms": round(result.percentile(99) * 1000, 2),
        "failures": result.failures,
        "server_cpu_us_per_event": None if cpu is None else round(cpu / events * 1e6, 2),
    }


def measure_collector(scratch: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """``{load: {"collector": summary, "floor": summary}}`` for the three loads."""
    loads = {
        "collector_single": (single_requests(SINGLE_REQUESTS), None, 1),
        "collector_batch": (batch_requests(BATCHES, BATCH_SIZE, first=SINGLE_REQUESTS), None, 100),
        "collector_at_1000": (
            single_requests(int(RATE * RATE_SECONDS), first=SINGLE_REQUESTS * 10),
            RATE,
            1,
        ),
    }
    results: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in loads}
    collector_port = free_port()
    floor_port = next(port for port in iter(free_port, None) if port != collector_port)
    ports = {"collector": collector_port, "floor": floor_port}
    # Both serve throughout and each load runs on one right after the other, so that a change
    # in what else the machine runs affects both sides alike.
    with (
        collector_server(scratch / "collector", ports["collector"]) as collector,
        floor_server(scratch, ports["floor"]) as floor,
    ):
        pids = {"collector": collector.pid, "floor": floor.pid}
        for port in ports.values():
            run_load("127.0.0.1", port, single_requests(200, first=10**7), connections=8)
        for name, (bodies, rate, per_request) in loads.items():
            for side, port in ports.items():
                before = cpu_seconds(pids[side])
                result = run_load("127.0.0.1", port, bodies, connections=CONNECTIONS, rate=rate)
                cpu = cpu_seconds(pids[side]) - before
                results[name][side] = summary(result, per_request, cpu)
    return results
