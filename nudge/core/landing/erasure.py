"""Erased people's calls leave the warehouse's copies of the landed events (GDPR).

The identity models already ignore what an erased id carried (docs/architecture.md, "Identity,
merges, deletion and suppression"); this removes those calls from ``raw.events`` and
``staging.stg_events`` too, at the run after the erasure, with the anonymous calls of the
anonymous ids stitched to the erased person (by an identify or an alias made before the
erasure), unless a person not erased was stitched to them too. Kept: the calls that say who was erased
and merged (deletes, suppressions, unsuppressions, merges). They are the audit record of the
erasure, hold no traits or properties, and the identity models need them to keep erasing what
still arrives. An identify that gave the person an email address which calls address them by
(an id holding '@') keeps that address as its only trait: it is what joins those calls made
before the erasure (also ones arriving late) to the erased person, and without it they would be
joined to the next person with that email. The
landing files are not touched (their retention is the operator's).
"""

from __future__ import annotations

import duckdb

from nudge.core.warehouse.connection import transaction

# The track events that suppress (delete and keep out) and unsuppress a person (what the
# collector lands for Customer.io's suppress and unsuppress; dbt's macros name them too).
USER_SUPPRESSED = "User Suppressed"
USER_UNSUPPRESSED = "User Unsuppressed"
COPIES = ("raw.events", "staging.stg_events")
# The calls that are kept: deletes, suppressions and merges (dbt's is_erasure_call and
# is_merge_call macros). Never NULL: it is negated, and ``not NULL`` would keep a call that is
# none of them (an alias without nudge's merge mark, whose context then stayed).
_RECORDS = f"""(e.type = 'delete'
    or (e.type = 'track' and coalesce(e.event, '') in ('{USER_SUPPRESSED}', '{USER_UNSUPPRESSED}'))
    or (e.type = 'alias' and coalesce(e.context ->> '$.nudge.merge', '') = 'true'))"""


def _links(alias: str) -> str:
    """Whether call ``alias`` links an anonymous id to its user (int_identity_links)."""
    return f"""(({alias}.type = 'alias' and {alias}.previous_id is not null)
        or ({alias}.type = 'identify'
            and coalesce({alias}.anonymous_id, {alias}.traits ->> '$.anonymous_id') is not null))"""


def _linked_id(alias: str) -> str:
    """The anonymous id call ``alias`` links (see ``_links``)."""
    return f"""case when {alias}.type = 'alias' then {alias}.previous_id
        else coalesce({alias}.anonymous_id, {alias}.traits ->> '$.anonymous_id') end"""


def purge_erased_calls(con: duckdb.DuckDBPyConnection, erased_users: str) -> int:
    """Delete every call carried by an id of ``erased_users`` (a table of ``(user_id,
    erased_through)``, dbt's ``marts.dim_erased_users``) stamped at or before its erasure, and
    the anonymous calls of the anonymous ids stitched to it (unless another, not erased, person
    was linked to them too), but the erasure and merge records; return how many rows left
    ``raw.events``. The calls that link an anonymous id to the erased person are kept without
    traits or context (only the ids), so that anonymous calls arriving late are purged too."""
    purged = 0
    with transaction(con):
        for table in COPIES:
            erased = f"""from {erased_users} d
                where e.user_id = d.user_id and e.timestamp <= d.erased_through
                  and not {_RECORDS}"""
            email_link = f"""(e.type = 'identify' and coalesce(lower(e.traits ->> '$.email') in (
                select lower(user_id) from {table} where user_id like '%@%'), false))"""
            stitched = f"""(select {_linked_id("l")} as anonymous_id, d.erased_through
                from {table} l join {erased_users} d
                  on l.user_id = d.user_id and l.timestamp <= d.erased_through
                where {_links("l")} and not exists (
                    select 1 from {table} o
                    where {_links("o")} and {_linked_id("o")} = {_linked_id("l")}
                      and o.user_id not in (select user_id from {erased_users})))"""
            anonymous = con.execute(
                f"""delete from {table} e using {stitched} a
                    where e.user_id is null and e.anonymous_id = a.anonymous_id
                      and e.timestamp <= a.erased_through and not {_RECORDS}"""
            ).fetchone()
            con.execute(
                f"""update {table} e
                    set traits = json_object('email', e.traits ->> '$.email')
                    {erased} and {email_link}"""
            )
            con.execute(
                f"""update {table} e
                    set traits = case
                        when {email_link} then json_object('email', e.traits ->> '$.email')
                        when e.anonymous_id is null and e.type = 'identify'
                          then json_object('anonymous_id', e.traits ->> '$.anonymous_id')
                        end,
                      context = null
                    {erased} and {_links("e")}"""
            )
            deleted = con.execute(
                f"""delete from {table} e using {erased.removeprefix("from ")}
                    and not {email_link} and not {_links("e")}"""
            ).fetchone()
            if table == COPIES[0]:
                purged = sum(int(row[0]) for row in (anonymous, deleted) if row)
    return purged
