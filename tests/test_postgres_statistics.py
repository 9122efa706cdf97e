"""PostgresConnection analyses a table a statement changed a lot (nudge.core.warehouse.
postgres_connection): the next statement reading it is planned with its real size, as the
server's autovacuum (if it runs) would only later. On the local Postgres."""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl
import pytest

from nudge.core.warehouse.postgres_connection import PostgresConnection

ROWS = 5_000


@pytest.fixture
def pg(postgres_database: str) -> Iterator[PostgresConnection]:
    con = PostgresConnection(postgres_database)
    try:
        con.execute("create schema nudge")
        con.execute("create table nudge.entries (k varchar primary key, n bigint)")
        yield con
    finally:
        con.close()


def _estimated_rows(con: PostgresConnection, table: str) -> float:
    """What the planner believes ``table`` holds (-1: never analysed)."""
    found = con.execute(
        "select reltuples from pg_class where oid = to_regclass(?)", [table]
    ).fetchone()
    assert found is not None, table
    return float(found[0])


def test_a_large_insert_leaves_the_table_analysed(pg: PostgresConnection) -> None:
    inserted = pg.execute(
        "insert into nudge.entries select 'u' || i, i from range(?) t(i)", [ROWS]
    ).fetchone()
    assert inserted == (ROWS,)  # the statement's own answer, not the analysis's
    assert _estimated_rows(pg, "nudge.entries") == ROWS
    analysed = pg.execute(
        "select last_analyze is not null from pg_stat_user_tables"
        " where schemaname = 'nudge' and relname = 'entries'"
    ).fetchone()
    assert analysed == (True,)


def test_a_table_filled_inside_a_transaction_is_analysed_before_the_next_statement(
    pg: PostgresConnection,
) -> None:
    pg.begin()
    pg.execute("create or replace temp table _chosen as select i as k from range(?) t(i)", [ROWS])
    assert _estimated_rows(pg, "_chosen") == ROWS
    returned = pg.execute(
        "insert into nudge.entries select 'c' || k, k from _chosen returning k"
    ).fetchall()
    pg.commit()
    assert len(returned) == ROWS  # results of a statement stay fetchable after the analysis
    assert _estimated_rows(pg, "nudge.entries") == ROWS


def test_small_changes_wait_for_autovacuums_threshold(pg: PostgresConnection) -> None:
    pg.execute("insert into nudge.entries select 'u' || i, i from range(?) t(i)", [ROWS])
    pg.execute("delete from nudge.entries where n < 10")  # 10 rows: below 50 + 10%
    assert _estimated_rows(pg, "nudge.entries") == ROWS
    pg.execute("delete from nudge.entries where n < ?", [ROWS // 2])
    assert _estimated_rows(pg, "nudge.entries") == ROWS - ROWS // 2


def test_a_registered_frame_is_analysed(pg: PostgresConnection) -> None:
    pg.register("_frame", pl.DataFrame({"k": [f"u{i}" for i in range(ROWS)]}))
    assert _estimated_rows(pg, "_frame") == ROWS
