"""The floor of each stage: the least work that produces the same result, timed in the same run.

- warehouse stages (dbt models, segments, membership history, reports): the SQL dbt compiled for
  the same nodes, run directly in DuckDB in dependency order (``create or replace table|view``;
  an incremental model's select goes into a temporary table; a test's query is counted);
- loading: one ``create table as select * from read_parquet(...)`` of the same files;
- landing: the same messages appended as JSON lines to a file;
- journey planning: copying the rows the run wrote (entries, transitions, outbox) with one
  ``create table as`` each;
- sending: a bare ``smtplib`` loop over one connection (the provider's concurrency) handing the
  same ``.eml`` bytes to the same local SMTP server.
"""

from __future__ import annotations

import json
import smtplib
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from nudge.core.warehouse.connection import connect

FLOOR_SCHEMA = "bench_floor"


def _floor_statement(node: Any) -> str | None:
    sql = node.compiled_code
    if not sql:
        return None
    if node.resource_type == "test":
        return f"select count(*) from ({sql}) t"
    materialized = node.config.materialized
    if materialized == "ephemeral":
        return None  # inlined into its dependents' compiled SQL
    if materialized == "view":
        return f"create or replace view {node.relation_name} as {sql}"
    if materialized == "incremental":
        return f"create or replace table {FLOOR_SCHEMA}.{node.name} as {sql}"
    return f"create or replace table {node.relation_name} as {sql}"


def sql_floor(warehouse_path: Path, manifest: Any, unique_ids: Sequence[str]) -> dict[str, float]:
    """Seconds per node for running its compiled SQL directly, in the order given (dbt's
    completion order of the build just measured, which respects dependencies)."""
    seconds: dict[str, float] = {}
    with connect(warehouse_path) as con:
        con.execute(f"create schema if not exists {FLOOR_SCHEMA}")
        for unique_id in unique_ids:
            node = manifest.nodes.get(unique_id)
            statement = None if node is None else _floor_statement(node)
            if statement is None:
                continue
            started = time.perf_counter()
            con.execute(statement).fetchall()
            seconds[unique_id] = time.perf_counter() - started
        con.execute(f"drop schema {FLOOR_SCHEMA} cascade")
    return seconds


def load_floor(scratch: Path, files: Iterable[Path]) -> float:
    """Copy the same parquet files into a fresh DuckDB table."""
    scratch.unlink(missing_ok=True)
    paths = [str(p) for p in files]
    try:
        with connect(scratch) as con:
            started = time.perf_counter()
            con.execute(
                "create table events as select * from read_parquet(?, union_by_name = true)",
                [paths],
            )
            return time.perf_counter() - started
    finally:
        scratch.unlink(missing_ok=True)
        Path(f"{scratch}.wal").unlink(missing_ok=True)


def landing_floor(path: Path, messages: Iterable[Mapping[str, Any]]) -> float:
    """Append the same messages to a file as JSON lines."""
    started = time.perf_counter()
    with open(path, "w", encoding="utf-8") as sink:
        for message in messages:
            sink.write(json.dumps(message) + "\n")
    seconds = time.perf_counter() - started
    path.unlink(missing_ok=True)
    return seconds


def journeys_floor(warehouse_path: Path, run_id: str) -> float:
    """Write the rows the journey run wrote, once more, with one ``create table as`` each."""
    copies = {
        "entries": "select * from nudge.journey_entries where entry_id in "
        "(select entry_id from nudge.journey_transitions where run_id = ?)",
        "transitions": "select * from nudge.journey_transitions where run_id = ?",
        "outbox": "select * from nudge.outbox where run_id = ?",
    }
    with connect(warehouse_path) as con:
        con.execute(f"create schema if not exists {FLOOR_SCHEMA}")
        started = time.perf_counter()
        for name, select in copies.items():
            con.execute(f"create or replace table {FLOOR_SCHEMA}.{name} as {select}", [run_id])
        seconds = time.perf_counter() - started
        con.execute(f"drop schema {FLOOR_SCHEMA} cascade")
    return seconds


def _recipient(eml: bytes) -> str:
    first = eml.split(b"\r\n", 1)[0]
    return first.split(b":", 1)[1].strip().decode()


def send_floor(host: str, port: int, sender: str, messages: Sequence[Path]) -> float:
    """Hand the same received messages to the same server over one connection, in a loop."""
    payloads = []
    for path in messages:
        data = path.read_bytes()
        payloads.append((_recipient(data), data.split(b"\r\n", 1)[1]))
    started = time.perf_counter()
    smtp = smtplib.SMTP(host, port)
    try:
        smtp.ehlo()
        for recipient, payload in payloads:
            smtp.sendmail(sender, [recipient], payload)
    finally:
        smtp.quit()
    return time.perf_counter() - started
