"""nudge's own tables on PostgreSQL, and connections to the server.

The tables nudge writes (``raw``, ``nudge``: ``nudge.core.warehouse.schema``) have one definition,
written for DuckDB; Postgres gets the same DDL transpiled by sqlglot, with JSON documents stored as
``jsonb`` (what the segment compiler's Postgres SQL and the dbt models read). A connection lives as
long as the block that opened it, as DuckDB's do.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlglot
from sqlglot import exp

from nudge.core.environment import environment
from nudge.core.warehouse import schema
from nudge.core.warehouse.settings import (
    POSTGRES_URL_ENV,
    WAREHOUSE_ENV,
    postgres_address,
    postgres_url,
)


def _jsonb(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.DataType) and node.is_type(exp.DataType.Type.JSON):
        return exp.DataType.build("JSONB")
    return node


@functools.cache
def parsed_definitions() -> tuple[exp.Expression, ...]:
    """Every statement of nudge's table definitions, parsed as DuckDB."""
    ddl = "\n".join(
        [
            schema.RAW_TABLES,
            schema.ENGINE_TABLES,
            schema.DELIVERY_TABLES,
            schema.JOURNEY_TABLES,
            schema.MANUAL_SEGMENT_TABLES,
        ]
    )
    return tuple(s for s in sqlglot.parse(ddl, read="duckdb") if s is not None)


@functools.cache
def postgres_ddl() -> tuple[str, ...]:
    """Every statement of nudge's table definitions, in Postgres."""
    return tuple(s.transform(_jsonb).sql("postgres") for s in parsed_definitions())


@contextmanager
def connect_postgres(url: str | None = None) -> Iterator[Any]:
    """A psycopg2 connection to ``url`` (default ``NUDGE_POSTGRES_URL``), closed when the block
    ends. Uncommitted work is rolled back when the block raises."""
    con = postgres_address(url).connect()
    try:
        yield con
    finally:
        con.close()


def ensure_postgres_tables(con: Any) -> None:
    """Create the ``raw`` and ``nudge`` schemas and tables if they do not exist yet (committed)."""
    with con.cursor() as cursor:
        for statement in postgres_ddl():
            cursor.execute(statement)
    con.commit()


def _with_database(url: str, dbname: str) -> str:
    """``url`` naming the database ``dbname`` instead of its own."""
    postgres_address(url)  # raises on a URL without a database
    return url[: url.rindex("/") + 1] + dbname


def create_database(dbname: str, url: str | None = None) -> str:
    """Create the database ``dbname`` on the server of ``url``; returns its URL. Strings sort
    bytewise there (collation C), as in DuckDB: string comparisons in segments and the
    tie-breaks of ``first_row_per`` give the same answers on both."""
    _administer(
        f'create database "{_checked_database(dbname)}" template template0'
        " encoding 'UTF8' lc_collate 'C' lc_ctype 'C'",
        url,
    )
    return _with_database(url or postgres_url(), dbname)


def drop_database(dbname: str, url: str | None = None) -> None:
    """Drop the database ``dbname`` on the server of ``url`` if it exists."""
    _administer(f'drop database if exists "{_checked_database(dbname)}" with (force)', url)


# A throwaway database's name: its family (``nudge_scenario_``), then hexadecimal digits.
_THROWAWAY_NAME = re.compile(r"(?P<family>[a-z][a-z0-9_]*_)[0-9a-f]+")


def _claim_key(dbname: str) -> int:
    """The advisory lock key that claims ``dbname``: 64 bits of its SHA-256."""
    return int.from_bytes(hashlib.sha256(dbname.encode()).digest()[:8], "big", signed=True)


@contextmanager
def _claimed(dbname: str, url: str) -> Iterator[Any]:
    """A connection to the server's ``postgres`` database holding the advisory lock that claims
    ``dbname`` while the block runs (the server lets it go when the process dies)."""
    con = postgres_address(url).connect("postgres")
    try:
        con.autocommit = True
        with con.cursor() as cursor:
            cursor.execute("select pg_advisory_lock(%s)", (_claim_key(dbname),))
        yield con
    finally:
        con.close()


def _drop_abandoned(claim: Any, family: str, url: str) -> None:
    """Drop the databases of ``family`` that no process claims (their process was killed
    inside ``new_database``)."""
    with claim.cursor() as cursor:
        cursor.execute("select datname from pg_database")
        names = [
            name
            for (name,) in cursor.fetchall()
            if (match := _THROWAWAY_NAME.fullmatch(name)) and match["family"] == family
        ]
        for name in names:
            cursor.execute("select pg_try_advisory_lock(%s)", (_claim_key(name),))
            if not cursor.fetchone()[0]:
                continue  # its process is alive
            try:
                drop_database(name, url)
            finally:
                cursor.execute("select pg_advisory_unlock(%s)", (_claim_key(name),))


@contextmanager
def new_database(dbname: str, url: str | None = None) -> Iterator[str]:
    """A new database ``dbname`` (collation C) on the server of ``url`` (default
    ``NUDGE_POSTGRES_URL``), dropped when the block ends. Yields its URL.

    A throwaway name is a family and hexadecimal digits (``nudge_scenario_1f2e...``). While the
    block runs, this process holds an advisory lock on the name; before creating it, the
    databases of the same family that nobody holds were left by a process killed inside its
    block (SIGKILL, a lost machine), and are dropped."""
    match = _THROWAWAY_NAME.fullmatch(dbname)
    if match is None:
        raise ValueError(f"database name {dbname!r}: use a family such as nudge_test_, then hex")
    server = url or postgres_url()
    with _claimed(dbname, server) as claim:
        _drop_abandoned(claim, match["family"], server)
        created = create_database(dbname, server)
        try:
            yield created
        finally:
            drop_database(dbname, created)


@contextmanager
def database_of_its_own(dbname: str) -> Iterator[str]:
    """A ``new_database`` that ``NUDGE_WAREHOUSE`` and ``NUDGE_POSTGRES_URL`` point at while the
    block runs; then the two variables are restored and the database dropped. Yields its URL."""
    with new_database(dbname) as url, pointing_at(url):
        yield url


@contextmanager
def pointing_at(url: str) -> Iterator[None]:
    """``NUDGE_WAREHOUSE`` and ``NUDGE_POSTGRES_URL`` point at the Postgres database ``url``
    while the block runs, and are restored afterwards (a process can alternate between DuckDB
    and Postgres, as the side-by-side scenario runs do)."""
    with environment({WAREHOUSE_ENV: "postgres", POSTGRES_URL_ENV: url}):
        yield


def _checked_database(dbname: str) -> str:
    if not dbname.replace("_", "").isalnum() or not dbname[0].isalpha():
        raise ValueError(f"database name {dbname!r}: use letters, digits and _ only")
    return dbname


def _administer(statement: str, url: str | None) -> None:
    """Run one statement that cannot run in a transaction, connected to the server's
    ``postgres`` database."""
    con = postgres_address(url or postgres_url()).connect("postgres")
    try:
        con.autocommit = True
        with con.cursor() as cursor:
            cursor.execute(statement)
    finally:
        con.close()


if __name__ == "__main__":
    # `python -m nudge.core.warehouse.postgres`: create nudge's tables at NUDGE_POSTGRES_URL.
    with connect_postgres() as connection:
        ensure_postgres_tables(connection)
