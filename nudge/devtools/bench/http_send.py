"""Sending to an HTTP provider that answers after 50 ms: the real dispatch against a bare loop.

A local server stands in for SendGrid and answers every request after ``latency`` seconds: an
ASGI endpoint under uvicorn in a process of its own (``slow_provider``), as a provider is a
machine of its own. The measured path is ``senders.dispatch.dispatch_pending`` with the real
``SendgridEmailProvider`` (policies, rendering, ledger intents, hand-overs and outcomes) over
``messages`` pending outbox rows; the floor is a bare ``requests`` loop posting the same
requests (the provider's own JSON bodies for the same messages, rendered before the clock starts,
and its headers) to the same server from as many threads as the provider's concurrency, over one
session set up as the provider's (``HttpClient``: the pool, no retries, ``trust_env`` off). Its
own small warehouse: the dispatch is what is timed, not the journeys before it.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import requests

from nudge.core.dsl.spec import Content, Origin, Template
from nudge.core.warehouse.schema import ensure_tables
from nudge.devtools.bench.server_process import server_process
from nudge.devtools.free_port import free_port
from senders.channels.sendgrid import SendgridEmailProvider, SendgridSettings
from senders.dispatch import dispatch_pending, render_message
from senders.http import HttpClient, HttpLimits
from senders.templates import TemplateRenderer

AS_OF = datetime(2026, 1, 1, 12, 0, 0)
TEMPLATE = Template(
    "bench_http", "email", Origin("bench", "templates"),
    {"subject": "Hi {{ user.first_name }}", "html": "<p>News for {{ user.first_name }}</p>"},
)  # fmt: skip


@dataclass(frozen=True)
class HttpSendResult:
    seconds: float
    floor_seconds: float
    sent: int
    received: int


def _pending_outbox(path: Path, messages: int) -> None:
    with duckdb.connect(str(path)) as con:
        ensure_tables(con)
        con.execute(
            """create schema if not exists marts;
               create or replace table marts.dim_users as
               select 'u' || i as user_id, json_object('first_name', 'U' || i) as traits,
                      'u' || i || '@example.com' as email, null::varchar as phone,
                      null::varchar as timezone, false as unsubscribed
               from range(?) t(i)""",
            [messages],
        )
        con.execute(
            """insert into nudge.outbox (idempotency_key, delivery_id, run_id, as_of, entry_id,
                   journey, step, user_id, channel, template, topic, transactional, holdout,
                   event_properties, created_at)
               select 'k' || i, 'd' || i, 'bench', $as_of, 'e' || i, 'bench', 'news', 'u' || i,
                      'email', 'bench_http', null, false, false, null, $as_of
               from range($n) t(i)""",
            {"as_of": AS_OF, "n": messages},
        )


def _same_payloads(provider: SendgridEmailProvider, messages: int) -> list[dict[str, Any]]:
    """The bodies the provider posts for the outbox rows of ``_pending_outbox``."""
    renderer = TemplateRenderer([TEMPLATE])
    rows = (
        {"template": TEMPLATE.name, "channel": "email", "user_id": f"u{i}", "topic": None,
         "traits": f'{{"first_name": "U{i}"}}', "event_properties": None, "journey": "bench",
         "step": "news", "delivery_id": f"d{i}", "idempotency_key": f"k{i}",
         "address": f"u{i}@example.com"}
        for i in range(messages)
    )  # fmt: skip
    return [provider.payload(render_message(renderer, row)) for row in rows]


def _bare_loop(
    url: str, payloads: list[dict[str, Any]], headers: dict[str, str], concurrency: int
) -> float:
    session = HttpClient("floor", HttpLimits(concurrency=concurrency)).session
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for response in pool.map(
            lambda p: session.post(url, json=p, headers=headers, timeout=10), payloads
        ):
            response.raise_for_status()
    seconds = time.perf_counter() - started
    session.close()
    return seconds


def slow_provider(port: int, latency: float) -> Any:
    return server_process(
        [
            sys.executable, "-m", "uvicorn", "nudge.devtools.bench.slow_provider:app",
            "--port", str(port), "--log-level", "warning", "--no-access-log",
        ],
        {"NUDGE_BENCH_PROVIDER_LATENCY": str(latency)},
        port,
    )  # fmt: skip


def measure_http_send(
    scratch: Path, *, messages: int, concurrency: int = 128, latency: float = 0.05
) -> HttpSendResult:
    scratch.mkdir(parents=True, exist_ok=True)
    warehouse = scratch / "http-send.duckdb"
    warehouse.unlink(missing_ok=True)
    _pending_outbox(warehouse, messages)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with slow_provider(port, latency):
        settings = SendgridSettings(
            api_key="bench", base_url=base_url, sender="bench@example.com",
            concurrency=concurrency,
        )  # fmt: skip
        provider = SendgridEmailProvider(settings)
        with duckdb.connect(str(warehouse)) as con:
            started = time.perf_counter()
            summary = dispatch_pending(
                con, as_of=AS_OF, run_id="bench-http", content=Content(templates=(TEMPLATE,)),
                providers={"email": provider},
            )  # fmt: skip
            seconds = time.perf_counter() - started
        received = int(requests.get(f"{base_url}/received", timeout=10).text)
        headers = {"Authorization": f"Bearer {settings.api_key}"}
        floor = _bare_loop(provider.url, _same_payloads(provider, messages), headers, concurrency)
    return HttpSendResult(seconds, floor, summary.total("sent"), received)
