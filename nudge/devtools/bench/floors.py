"""The floor of each stage: the least work that produces the same result, timed in the same run.

Warehouse floors run in the warehouse the bench runs on (``NUDGE_WAREHOUSE``), through its own
driver with no layer in between (``direct_sql``): DuckDB's connection, or psycopg2 on Postgres.

- warehouse stages (dbt models, segments, membership history, reports): the SQL dbt compiled for
  the same nodes, run directly in dependency order. On DuckDB ``create or replace table|view``
  (an incremental model's select goes into a scratch table); on Postgres every model's select
  goes into a table (a view: a view) of a scratch schema, as there is no ``create or replace
  table``; a test's query is counted;
- loading: on DuckDB one ``create table as select * from read_parquet(...)`` of the same files;
  on Postgres, which cannot read parquet, the same files read by pyarrow and sent with one
  ``COPY`` into a fresh table;
- landing: the same messages appended as JSON lines to a file;
- journey planning: copying the rows the run wrote (entries, transitions, outbox) with one
  ``create table as`` each;
- sending: a bare ``smtplib`` loop over one connection (the provider's concurrency) handing the
  same ``.eml`` bytes to the same local SMTP server.
"""

from __future__ import annotations

import io
import json
import smtplib
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from nudge.core.warehouse.connection import connect
from nudge.core.warehouse.postgres import connect_postgres
from nudge.core.warehouse.settings import warehouse

FLOOR_SCHEMA = "bench_floor"


class DirectSQL:
    """Statements in the warehouse's own SQL, run as written and fully read; autocommit."""

    def __init__(self, kind: str, con: Any) -> None:
        self.kind = kind
        self.con = con
        # The driver's parameter marker: DuckDB's ``?``, psycopg2's ``%s``.
        self.placeholder = "%s" if kind == "postgres" else "?"

    def run(self, statement: str, params: Sequence[Any] | None = None) -> None:
        if self.kind == "postgres":
            with self.con.cursor() as cursor:
                # Without parameters psycopg2 leaves a literal % (e.g. in ``like``) alone.
                cursor.execute(statement, params or None)
                if cursor.description is not None:
                    cursor.fetchall()
        else:
            self.con.execute(statement, params or []).fetchall()


@contextmanager
def direct_sql(warehouse_path: Path) -> Iterator[DirectSQL]:
    """The bench's warehouse through its own driver: the DuckDB file at ``warehouse_path``, or
    ``NUDGE_POSTGRES_URL`` through psycopg2 (not ``PostgresConnection``, which transpiles
    DuckDB's SQL: dbt's compiled SQL is already Postgres's)."""
    if warehouse() == "postgres":
        with connect_postgres() as con:
            con.autocommit = True
            yield DirectSQL("postgres", con)
    else:
        with connect(warehouse_path) as con:
            yield DirectSQL("duckdb", con)


def _floor_statement(node: Any, kind: str) -> str | None:
    sql = node.compiled_code
    if not sql:
        return None
    if node.resource_type == "test":
        return f"select count(*) from ({sql}) t"
    materialized = node.config.materialized
    if materialized == "ephemeral":
        return None  # inlined into its dependents' compiled SQL
    if kind == "postgres":
        relation = "view" if materialized == "view" else "table"
        return f"create {relation} {FLOOR_SCHEMA}.{node.name} as {sql}"
    if materialized == "view":
        return f"create or replace view {node.relation_name} as {sql}"
    if materialized == "incremental":
        return f"create or replace table {FLOOR_SCHEMA}.{node.name} as {sql}"
    return f"create or replace table {node.relation_name} as {sql}"


def sql_floor(warehouse_path: Path, manifest: Any, unique_ids: Sequence[str]) -> dict[str, float]:
    """Seconds per node for running its compiled SQL directly, in the order given (dbt's
    completion order of the build just measured, which respects dependencies)."""
    seconds: dict[str, float] = {}
    with direct_sql(warehouse_path) as sql:
        sql.run(f"drop schema if exists {FLOOR_SCHEMA} cascade")
        sql.run(f"create schema {FLOOR_SCHEMA}")
        for unique_id in unique_ids:
            node = manifest.nodes.get(unique_id)
            statement = None if node is None else _floor_statement(node, sql.kind)
            if statement is None:
                continue
            started = time.perf_counter()
            sql.run(statement)
            seconds[unique_id] = time.perf_counter() - started
        sql.run(f"drop schema {FLOOR_SCHEMA} cascade")
    return seconds


def load_floor(scratch: Path, files: Iterable[Path]) -> float:
    """Copy the same parquet files into a fresh table of the bench's warehouse."""
    if warehouse() == "postgres":
        return _postgres_load_floor(files)
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


def _postgres_load_floor(files: Iterable[Path]) -> float:
    """Read the same parquet files with pyarrow and send them with one ``COPY`` (as CSV, as the
    Postgres loader does) into a fresh table shaped like ``raw.events``."""
    with connect_postgres() as con:
        con.autocommit = True
        with con.cursor() as cursor:
            cursor.execute(f"drop schema if exists {FLOOR_SCHEMA} cascade")
            cursor.execute(f"create schema {FLOOR_SCHEMA}")
            cursor.execute(f"create table {FLOOR_SCHEMA}.events (like raw.events)")
            started = time.perf_counter()
            rows = pa.concat_tables(
                [pq.read_table(path) for path in files], promote_options="default"
            )
            columns = ", ".join(f'"{c}"' for c in rows.column_names)
            buffer = io.BytesIO()
            pa_csv.write_csv(rows, buffer, pa_csv.WriteOptions(include_header=False))
            buffer.seek(0)
            cursor.copy_expert(
                f"copy {FLOOR_SCHEMA}.events ({columns}) from stdin with (format csv)", buffer
            )
            seconds = time.perf_counter() - started
            cursor.execute(f"drop schema {FLOOR_SCHEMA} cascade")
    return seconds


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
        "(select entry_id from nudge.journey_transitions where run_id = {p})",
        "transitions": "select * from nudge.journey_transitions where run_id = {p}",
        "outbox": "select * from nudge.outbox where run_id = {p}",
    }
    with direct_sql(warehouse_path) as sql:
        sql.run(f"drop schema if exists {FLOOR_SCHEMA} cascade")
        sql.run(f"create schema {FLOOR_SCHEMA}")
        started = time.perf_counter()
        for name, select in copies.items():
            select = select.format(p=sql.placeholder)
            sql.run(f"create table {FLOOR_SCHEMA}.{name} as {select}", [run_id])
        seconds = time.perf_counter() - started
        sql.run(f"drop schema {FLOOR_SCHEMA} cascade")
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
