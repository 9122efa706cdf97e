"""nudge's DuckDB SQL gives the same answers on PostgreSQL (nudge.core.warehouse.dialect and
postgres_connection): each statement runs on an in-memory DuckDB and, transpiled, on a fresh
Postgres database, over the same rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import duckdb
import polars as pl
import pytest

from nudge.core.warehouse.postgres_connection import PostgresConnection

SETUP = [
    "create schema nudge",
    "create table nudge.t (k varchar primary key, n bigint, doc json, seen timestamp)",
    "create table nudge.u (k varchar primary key, flag varchar)",
    """insert into nudge.t values
       ('a', 1, '{"tz": "Europe/Berlin", "n": 3, "neg": -2, "x": 1.5, "o": {"p": true}}',
        '2026-03-29 00:30:00'),
       ('b', 2, '{"tz": "America/New_York", "s": "1", "100%": "yes"}', '2026-11-01 05:00:00'),
       ('c', null, null, null)""",
    "insert into nudge.u values ('a', 'yes'), ('b', 'F'), ('d', 'on')",
    # a table of nudge's own: insert or replace on Postgres needs its primary key
    "create table nudge.journey_controls (journey varchar primary key, paused boolean,"
    " changed_at timestamp)",
    "insert into nudge.journey_controls values ('a', true, '2026-01-01'), ('b', false, null)",
]

# (DuckDB SQL, parameters): each must answer the same rows on both warehouses.
QUERIES: list[tuple[str, Any]] = [
    ("select k, n from nudge.t where k = ? or n = ? order by all", ["a", 2]),
    ("select k from nudge.t where k = $k or k = $other order by k", {"k": "b", "other": "c"}),
    ("select k, count(*) as c from nudge.t group by all order by all", []),
    ("select count(*) from (select k from nudge.t)", []),
    ("select k from nudge.t anti join nudge.u using (k) order by k", []),
    ("select k from nudge.t semi join nudge.u using (k) order by k", []),
    (
        "select k from nudge.t semi join (select unnest(cast(? as varchar[])) as k) w using (k)"
        " where n = ? or n is null order by k",
        [["a", "b", "c"], 2],
    ),
    (
        "select k, doc ->> '$.tz', json_extract_string(doc, $p) from nudge.t order by k",
        {"p": "$.tz"},
    ),
    ("select k, json_extract(doc, '$.o.p') ->> '$' from nudge.t order by k", []),
    # a path computed in SQL, of two keys (the send policy's per-channel topic preference)
    (
        "select k, json_extract(doc, '$.' || 'o' || '.' || 'p') ->> '$',"
        " json_extract(doc, '$.' || 'tz') ->> '$' from nudge.t order by k",
        [],
    ),
    (
        "select k, json_type(doc, '$.n'), json_type(doc, '$.neg'), json_type(doc, '$.x'),"
        " json_type(doc, '$.s'), json_type(doc, '$.o'), json_type(doc) from nudge.t order by k",
        [],
    ),
    ("select k, doc ->> '$.\"100%\"' from nudge.t where k like 'b%' order by k", []),
    ("select k, seen + to_seconds(3600) from nudge.t order by k", []),
    ("select k, sha256(k || 'é') from nudge.t order by k", []),
    ("select k, json(t.doc -> '$.o') = json(?) from nudge.t t order by k", ['{"p": true}']),
    ("select k, t.doc ->> '$.o.p', t.doc -> '$.o.p' from nudge.t t order by k", []),
    (
        "select k, 'key:' || to_json(t.k) || ':' || json(t.doc -> '$.tz') from nudge.t t order by k",
        [],
    ),
    ("select any_value(n) from nudge.t where n is not null and n < 2", []),
    (
        "select k, cast(json_object('k', k, 'n', 1) as varchar) = json_object('k', k, 'n', 1)::varchar"
        " from nudge.t order by k",
        [],
    ),
    ("select k, json_object('tz', doc ->> '$.tz') ->> '$.tz' from nudge.t order by k", []),
    ("select k, try_cast(flag as boolean) from nudge.u order by k", []),
    ("select k, list_contains(cast(? as varchar[]), k) from nudge.t order by k", [["a", "c"]]),
    (
        "select schema_name, table_name from duckdb_tables() where schema_name = 'nudge'"
        " order by all",
        [],
    ),
    (
        "select k, timezone('UTC', timezone(doc ->> '$.tz', date_trunc('day',"
        " timezone(doc ->> '$.tz', timezone('UTC', seen))) + to_seconds(9 * 3600)))"
        " from nudge.t where seen is not null order by k",
        [],
    ),
    (
        "select k, row_number() over (order by k) as r from nudge.t"
        " qualify row_number() over (order by k) < 3 order by k",
        [],
    ),
]

# Statements that change rows, then the query that shows the result.
CHANGES: list[tuple[list[tuple[str, Any]], str]] = [
    (
        [
            (
                "insert or replace into nudge.journey_controls (journey, paused) values (?, ?)",
                ["a", False],
            ),
            ("insert or replace into nudge.journey_controls values (?, ?, null)", ["b", True]),
            ("insert or replace into nudge.journey_controls values (?, ?, null)", ["e", True]),
            ("insert or ignore into nudge.u (k, flag) values (?, ?)", ["b", "never"]),
        ],
        "select journey, paused, changed_at, (select flag from nudge.u where k = 'b')"
        " from nudge.journey_controls order by all",
    ),
    (
        [
            (
                "insert into nudge.t (k, n) values (?, ?)"
                " on conflict (k) do update set n = greatest(n, excluded.n)",
                ["a", 7],
            ),
            ("create or replace temp table _x as select k from nudge.t where n > 1", []),
            ("create or replace temp table _x as select k from nudge.t where n > 2", []),
        ],
        "select (select n from nudge.t where k = 'a'), (select count(*) from _x)",
    ),
]


@pytest.fixture
def both(postgres_database: str) -> Iterator[tuple[Any, PostgresConnection]]:
    duck = duckdb.connect()
    pg = PostgresConnection(postgres_database)
    try:
        for statement in SETUP:
            duck.execute(statement)
            pg.execute(statement)
        yield duck, pg
    finally:
        duck.close()
        pg.close()


def _rows(con: Any, sql: str, params: Any) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in con.execute(sql, params).fetchall()]


@pytest.mark.parametrize(("sql", "params"), QUERIES, ids=[q[0][:40] for q in QUERIES])
def test_a_query_answers_the_same_on_postgres(both: tuple[Any, Any], sql: str, params: Any) -> None:
    duck, pg = both
    assert _rows(pg, sql, params) == _rows(duck, sql, params)


@pytest.mark.parametrize(("statements", "query"), CHANGES, ids=["insert or", "conflict, replace"])
def test_changes_leave_the_same_rows_on_postgres(
    both: tuple[Any, Any], statements: list[tuple[str, Any]], query: str
) -> None:
    for con in both:
        for sql, params in statements:
            con.execute(sql, params)
    duck, pg = both
    assert _rows(pg, query, []) == _rows(duck, query, [])


def test_statements_without_results_answer_the_rows_they_changed(both: tuple[Any, Any]) -> None:
    duck, pg = both
    sql = "insert into nudge.u select k || '2', null from nudge.t"
    assert pg.execute(sql).fetchone() == duck.execute(sql).fetchone() == (3,)


def test_a_registered_frame_is_a_table_and_results_come_back_as_frames(
    both: tuple[Any, Any],
) -> None:
    frame = pl.DataFrame(
        {
            "k": ["a", "b", None],
            "w": [1, None, 3],
            "on": [True, False, None],
            "at": [datetime(2026, 1, 1, 12), None, datetime(2026, 1, 2)],
            "text": ['say "hi", ok', "", "\\N"],
        }
    )
    sql = "select f.*, t.n from _frame f left join nudge.t t using (k) order by f.w nulls last"
    results = []
    for con in both:
        con.register("_frame", frame)
        try:
            results.append(con.sql(sql).pl())
        finally:
            con.unregister("_frame")
    assert results[1].to_dicts() == results[0].to_dicts()
    assert results[1].schema == results[0].schema


def test_transactions_roll_back_on_postgres(both: tuple[Any, Any]) -> None:
    _, pg = both
    pg.begin()
    pg.execute("delete from nudge.u")
    pg.rollback()
    assert pg.execute("select count(*) from nudge.u").fetchone() == (3,)


def test_a_missing_table_is_duckdbs_catalog_error(both: tuple[Any, Any]) -> None:
    for con in both:
        with pytest.raises(duckdb.CatalogException):
            con.execute("select * from marts.dim_users")
