"""Who a user id is after merges, for the code that reads the warehouse outside dbt.

The identity models (docs/architecture.md, "Identity, merges, deletion and suppression") give
every id merged into another person, email addresses included, in one table. Journey entries
follow the person; the delivery ledger and the outbox keep the id a message was planned for,
so reading a person's history means reading every one of their ids.
"""

from __future__ import annotations

import duckdb

# The dbt model of ids merged into another person (dbt_project/models/intermediate).
MERGED_USERS = "intermediate.int_merged_users"
_NO_MERGES = "(select null::varchar as user_id, null::varchar as merged_into where false)"


def merged_users(con: duckdb.DuckDBPyConnection) -> str:
    """``MERGED_USERS`` as a relation ``(user_id, merged_into)``, or an empty one before dbt has
    built it."""
    found = con.execute(
        "select 1 from duckdb_tables() where schema_name = 'intermediate'"
        " and table_name = 'int_merged_users'"
    ).fetchall()
    return MERGED_USERS if found else _NO_MERGES


def person_ids(con: duckdb.DuckDBPyConnection, user_id: str) -> tuple[str, list[str]]:
    """The person ``user_id`` is part of, and all of that person's ids (theirs first)."""
    relation = merged_users(con)
    found = con.execute(
        f"select merged_into from {relation} where user_id = ?", [user_id]
    ).fetchone()
    person = found[0] if found else user_id
    merged = con.execute(
        f"select user_id from {relation} where merged_into = ? order by 1", [person]
    ).fetchall()
    return person, [person, *(r[0] for r in merged)]
