"""A PostgreSQL connection with the part of DuckDB's connection API nudge uses.

The journey engine, the senders and the ledger are written against DuckDB's connection:
``execute(sql, params)`` then ``fetchone``/``fetchall``/``pl()``, ``executemany``,
``begin``/``commit``/``rollback``, ``register(name, frame)`` and ``sql(...).pl()``. On DuckDB they
keep the DuckDB connection itself (no layer, no cost); on Postgres ``connect`` in
``nudge.core.warehouse.connection`` hands them a ``PostgresConnection``, which runs the same
statements transpiled (``nudge.core.warehouse.dialect``) and answers as DuckDB would:

- autocommit, with explicit ``begin``, as DuckDB; no read-only mode: readers never wait for a
  writer on Postgres, and the read commands fill temporary tables (which a read-only
  transaction refuses, where DuckDB allows them);
- JSON and ``jsonb`` values come back as text, ``numeric`` as ``int`` when whole, else ``float``
  (DuckDB's sums of integers are integers);
- a registered polars frame becomes a temporary table filled with ``COPY`` (DuckDB reads the
  frame in place), dropped by ``unregister``;
- a statement without results answers the number of rows it changed, as DuckDB's do;
- a missing table raises ``MissingRelation``, a ``duckdb.CatalogException``, so code catching
  DuckDB's error for "not built yet" catches it too;
- a table a statement (or a registered frame) changes by more than autovacuum's threshold (50
  rows + 10% of its size when last analysed) is analysed at once. Without statistics the planner
  takes a freshly filled table for a few rows and chooses nested loops over 100,000 users
  (30-40 s a statement at the medium bench); autovacuum, where it runs at all, analyses later
  than the next statement. ``skip_locked``: inside a transaction ANALYZE holds its lock until
  commit, so waiting for another connection's could deadlock; a table being analysed elsewhere
  gets its statistics there.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import psycopg2
import psycopg2.errors
import psycopg2.extensions
import psycopg2.extras

from nudge.core.warehouse.dialect import to_postgres, written_tables
from nudge.core.warehouse.settings import postgres_address

# Postgres type oids -> the polars type of a result column (others: inferred from the values).
_POLARS_TYPES: dict[int, pl.DataType] = {
    16: pl.Boolean(),
    20: pl.Int64(),
    21: pl.Int64(),
    23: pl.Int64(),
    700: pl.Float64(),
    701: pl.Float64(),
    25: pl.String(),
    1043: pl.String(),
    19: pl.String(),
    114: pl.String(),
    3802: pl.String(),
    1114: pl.Datetime("us"),
    1082: pl.Date(),
}
# polars types -> the Postgres column type of a registered frame's temporary table.
_COLUMN_TYPES: dict[type[pl.DataType], str] = {
    pl.Boolean: "boolean",
    pl.Int8: "bigint",
    pl.Int16: "bigint",
    pl.Int32: "bigint",
    pl.Int64: "bigint",
    pl.UInt8: "bigint",
    pl.UInt16: "bigint",
    pl.UInt32: "bigint",
    pl.UInt64: "numeric",
    pl.Float32: "double precision",
    pl.Float64: "double precision",
    pl.Datetime: "timestamp",
    pl.Date: "date",
    pl.String: "text",
    pl.Null: "text",
}
_NULL = "\\N"
# Autovacuum's default rule for analysing: this many changed rows plus a fraction of the table.
_ANALYZE_BASE_ROWS = 50
_ANALYZE_FRACTION = 0.1


class MissingRelation(duckdb.CatalogException):
    """A statement named a table or view the Postgres database does not hold."""


def _numeric(value: str | None, cursor: Any) -> int | float | None:
    if value is None:
        return None
    return int(value) if value.lstrip("-").isdigit() else float(value)


def _text(value: str | None, cursor: Any) -> str | None:
    return value


def _cast_like_duckdb(con: Any) -> None:
    """JSON as text and numerics as numbers on ``con``, as DuckDB returns them."""
    for oids, name, cast in (
        ((114, 3802), "NUDGE_JSON_TEXT", _text),
        ((1700,), "NUDGE_NUMERIC", _numeric),
    ):
        psycopg2.extensions.register_type(psycopg2.extensions.new_type(oids, name, cast), con)


class PostgresConnection:
    """One psycopg2 connection behind DuckDB's connection methods (module docstring)."""

    def __init__(self, url: str, *, file_path: Path | None = None):
        self._con = postgres_address(url).connect()
        self._con.autocommit = True
        _cast_like_duckdb(self._con)
        self._cursor = self._con.cursor()
        # table -> (its rows when last analysed, rows changed since), for ``_changed_rows``.
        self._tables: dict[str, tuple[float, int]] = {}
        # Where files kept beside the warehouse go (the delivery ledger's handover journal).
        self.file_path = file_path

    # -- statements -------------------------------------------------------------------------
    def execute(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> PostgresConnection:
        """Run ``sql`` (DuckDB's dialect); the connection, to fetch from, as DuckDB returns."""
        args: Any = dict(params) if isinstance(params, Mapping) else tuple(params or ())
        try:
            self._cursor.execute(to_postgres(sql), args)
        except psycopg2.errors.UndefinedTable as error:
            raise MissingRelation(str(error).strip()) from error
        self._changed_rows(written_tables(sql), self._cursor.rowcount)
        return self

    def sql(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> Any:
        return self.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> PostgresConnection:
        psycopg2.extras.execute_batch(self._cursor, to_postgres(sql), [tuple(r) for r in rows])
        self._changed_rows(written_tables(sql), len(rows))
        return self

    def _changed_rows(self, tables: Sequence[tuple[str, bool]], rows: int) -> None:
        """Count ``rows`` changed in each of ``tables`` (name, whether just (re)created); analyse
        those past the threshold (module docstring). A cursor of its own, so the statement's
        results and row count stay for the caller to fetch."""
        with self._con.cursor() as cursor:
            for table, created in tables:
                if created:
                    self._tables[table] = (0.0, 0)
                if rows <= 0:
                    continue
                if table not in self._tables:
                    cursor.execute(
                        "select greatest(reltuples, 0) from pg_class where oid = to_regclass(%s)",
                        (table,),
                    )
                    known = cursor.fetchone()
                    self._tables[table] = (float(known[0]) if known else 0.0, 0)
                size, changed = self._tables[table]
                changed += rows
                if changed < _ANALYZE_BASE_ROWS + _ANALYZE_FRACTION * size:
                    self._tables[table] = (size, changed)
                    continue
                cursor.execute(f"analyze (skip_locked) {table}")
                self._tables[table] = (size + changed, 0)

    @property
    def description(self) -> Any:
        return self._cursor.description

    def fetchone(self) -> tuple[Any, ...] | None:
        if self._cursor.description is None:
            return next(iter(self._changed()), None)
        return self._cursor.fetchone()

    def fetchall(self) -> list[tuple[Any, ...]]:
        if self._cursor.description is None:
            return self._changed()
        return self._cursor.fetchall()

    def _changed(self) -> list[tuple[Any, ...]]:
        """What DuckDB answers a statement without results with: the rows it changed."""
        return [(self._cursor.rowcount,)] if self._cursor.rowcount >= 0 else []

    def pl(self) -> pl.DataFrame:
        """The result as a polars frame, typed by the result's column types."""
        description = self._cursor.description or ()
        rows = self._cursor.fetchall()
        schema = {d.name: _POLARS_TYPES.get(d.type_code) for d in description}
        columns = {name: [row[i] for row in rows] for i, name in enumerate(schema)}
        return pl.DataFrame(
            {name: pl.Series(name, values, dtype=schema[name]) for name, values in columns.items()}
        )

    def ensure_tables(self) -> None:
        """nudge's ``raw`` and ``nudge`` tables (``nudge.core.warehouse.postgres``)."""
        from nudge.core.warehouse.postgres import postgres_ddl

        for statement in postgres_ddl():
            self._cursor.execute(statement)

    # -- transactions -----------------------------------------------------------------------
    def begin(self) -> None:
        self._cursor.execute("begin")

    def commit(self) -> None:
        self._cursor.execute("commit")

    def rollback(self) -> None:
        self._cursor.execute("rollback")

    @contextmanager
    def advisory_lock(self, name: str) -> Iterator[None]:
        """Hold the session-level advisory lock named ``name`` for the block
        (``nudge.core.warehouse.locks``); released at the end, or when the connection closes."""
        self._cursor.execute("select pg_advisory_lock(hashtext(%s))", (name,))
        try:
            yield
        finally:
            # A failed transaction refuses statements until rolled back: closing the
            # connection (every stage does) releases the lock then.
            failed = psycopg2.extensions.TRANSACTION_STATUS_INERROR
            if not self._con.closed and self._con.get_transaction_status() != failed:
                self._cursor.execute("select pg_advisory_unlock(hashtext(%s))", (name,))

    # -- frames as tables -------------------------------------------------------------------
    def register(self, name: str, frame: pl.DataFrame) -> None:
        """``frame`` as the temporary table ``name`` (filled with ``COPY``)."""
        columns = ", ".join(
            f'"{column}" {_column_type(dtype, name, column)}'
            for column, dtype in frame.schema.items()
        )
        self._cursor.execute(f"drop table if exists {name}")
        self._cursor.execute(f"create temporary table {name} ({columns})")
        if frame.is_empty():
            return
        # Text quoted, so a string reading like the null marker stays a string.
        csv = frame.write_csv(include_header=False, null_value=_NULL, quote_style="non_numeric")
        data = io.StringIO(csv)
        self._cursor.copy_expert(f"copy {name} from stdin with (format csv, null '{_NULL}')", data)
        self._changed_rows([(name, True)], frame.height)

    def unregister(self, name: str) -> None:
        self._cursor.execute(f"drop table if exists {name}")

    def close(self) -> None:
        self._con.close()


def _column_type(dtype: pl.DataType, table: str, column: str) -> str:
    kind = _COLUMN_TYPES.get(type(dtype))
    if kind is None:
        raise TypeError(f"register {table}: column {column} of type {dtype} has no Postgres type")
    return kind
