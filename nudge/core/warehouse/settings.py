"""Which warehouse nudge uses: the one setting every part reads.

``NUDGE_WAREHOUSE`` is ``duckdb`` (the default: one embedded file per workspace), ``postgres``
(a server; ``NUDGE_POSTGRES_URL``, default ``postgresql://postgres@127.0.0.1:5432/nudge``) or
``spark`` (the dbt project only, through dbt-spark's ``session`` method on a local pyspark; the
journey engine and the senders refuse it: ``require_engine_warehouse``). dbt's
profile (``dbt_project/profiles.yml``) reads the same two variables through ``env_var``, so a
hand-run ``dbt build`` and nudge's own builds agree. A password belongs in the URL held in the
environment (or in PostgreSQL's own ``PGPASSWORD``/``.pgpass``), never in a file in git.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

WAREHOUSE_ENV = "NUDGE_WAREHOUSE"
POSTGRES_URL_ENV = "NUDGE_POSTGRES_URL"
DEFAULT_WAREHOUSE = "duckdb"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/nudge"
# Warehouse -> the sqlglot dialect nudge's own SQL (the segment compiler) is rendered in.
# Spark 4 reads JSON documents as VARIANT with the same functions as Databricks.
SQL_DIALECTS = {"duckdb": "duckdb", "postgres": "postgres", "spark": "databricks"}
WAREHOUSES = tuple(SQL_DIALECTS)
# The warehouses nudge's own SQL (the journey engine, the senders, the ledger, the read commands)
# runs on; on the others only the dbt project builds (docs/warehouses.md).
ENGINE_WAREHOUSES = ("duckdb", "postgres")


class WarehouseSettingError(ValueError):
    """A warehouse variable holds a value nudge cannot use; the message says which and why."""


class PostgresUnreachable(WarehouseSettingError):
    """The PostgreSQL server the settings name did not take a connection (down, a wrong host,
    port, user, password or database); the message says where and why."""


@dataclass(frozen=True)
class PostgresAddress:
    """The parts of ``NUDGE_POSTGRES_URL`` a client library connects with."""

    host: str
    port: int
    user: str
    password: str | None
    dbname: str

    def connect_kwargs(self) -> dict[str, object]:
        """Keyword arguments for ``psycopg2.connect``."""
        kwargs: dict[str, object] = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "dbname": self.dbname,
        }
        if self.password is not None:
            kwargs["password"] = self.password
        return kwargs

    def connect(self, dbname: str | None = None) -> Any:
        """A psycopg2 connection to this address (or its server's ``dbname``);
        ``PostgresUnreachable`` with a sentence when the server refuses it."""
        import psycopg2

        kwargs = {**self.connect_kwargs(), **({"dbname": dbname} if dbname else {})}
        try:
            return psycopg2.connect(**kwargs)
        except psycopg2.OperationalError as error:
            lines = str(error).strip().splitlines()
            why = lines[0] if lines else type(error).__name__
            raise PostgresUnreachable(
                f"cannot connect to PostgreSQL at {self.host}:{self.port}, database"
                f" {kwargs['dbname']} ({POSTGRES_URL_ENV}): {why}"
            ) from None


def warehouse() -> str:
    """The configured warehouse: ``NUDGE_WAREHOUSE``, else duckdb."""
    value = (os.environ.get(WAREHOUSE_ENV) or DEFAULT_WAREHOUSE).strip().lower()
    if value not in WAREHOUSES:
        raise WarehouseSettingError(
            f"{WAREHOUSE_ENV}={value!r} is not a warehouse nudge supports: "
            f"set it to one of {', '.join(WAREHOUSES)} (or leave it unset for duckdb)"
        )
    return value


def require_engine_warehouse(kind: str | None = None) -> str:
    """The configured warehouse (or ``kind``), refused with a sentence when nudge's own SQL does
    not run there."""
    kind = kind or warehouse()
    if kind not in ENGINE_WAREHOUSES:
        raise WarehouseSettingError(
            f"{WAREHOUSE_ENV}={kind}: only the dbt project builds on {kind} so far; the journey "
            f"engine, the senders and the read commands run on {' or '.join(ENGINE_WAREHOUSES)} "
            "(docs/warehouses.md)"
        )
    return kind


def sql_dialect(kind: str | None = None) -> str:
    """The sqlglot dialect of warehouse ``kind`` (default: the configured one)."""
    return SQL_DIALECTS[kind or warehouse()]


def postgres_url() -> str:
    """``NUDGE_POSTGRES_URL``, else the local server's ``nudge`` database."""
    return os.environ.get(POSTGRES_URL_ENV) or DEFAULT_POSTGRES_URL


def postgres_address(url: str | None = None) -> PostgresAddress:
    """``url`` (default: ``postgres_url()``) split into what a client connects with."""
    url = url or postgres_url()
    parts = urlsplit(url)
    dbname = unquote(parts.path.lstrip("/"))
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname or not dbname:
        raise WarehouseSettingError(
            f"{POSTGRES_URL_ENV} must look like postgresql://user[:password]@host[:port]/database, "
            f"got {without_password(url)!r}"
        )
    try:
        port = parts.port or 5432
    except ValueError:
        raise WarehouseSettingError(
            f"{POSTGRES_URL_ENV} has a port that is not a number: {without_password(url)!r}"
        ) from None
    return PostgresAddress(
        host=parts.hostname,
        port=port,
        user=unquote(parts.username or "postgres"),
        password=unquote(parts.password) if parts.password is not None else None,
        dbname=dbname,
    )


def without_password(url: str) -> str:
    """``url`` with its password, if any, as ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)
