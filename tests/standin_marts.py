"""Hand-made stand-ins for the user marts dbt builds, for tests that run the journey engine alone."""

from __future__ import annotations

import duckdb

from nudge.core.segments.compiler import compile_json_timestamp


def create_user_marts(con: duckdb.DuckDBPyConnection) -> None:
    """``marts.dim_users(user_id, traits)``, filled by the test, and ``marts.dim_user_traits`` as
    a view over it that reads each trait as the dbt model does (the compiler's timestamp rule)."""
    con.execute("create schema if not exists marts")
    con.execute("create table marts.dim_users (user_id varchar, traits json)")
    con.execute(f"""
        create view marts.dim_user_traits as
        select u.user_id, t.key as trait, t.value,
               {compile_json_timestamp("t.value")} as value_timestamp,
               null::timestamp as set_at
        from marts.dim_users u, json_each(u.traits) t
        where json_type(t.value) <> 'NULL'
    """)
