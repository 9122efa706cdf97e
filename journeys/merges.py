"""Journey entries follow merges (Customer.io's behaviour: the merged person keeps the secondary
person's history and journeys, and is not entered again).

Before the journeys run, every entry of an id merged into another person becomes that person's,
so reentry rules see it and an active one goes on for the person. When the person then has more
than one active entry in a journey, only the earliest goes on; the others exit (``merged``), so
no step is sent to one person twice. Messages planned for a merged id and not yet decided (held
by quiet hours, say) go to the person too. Transitions, decided outbox rows and ledger rows keep
the id they were written for (``nudge.core.identity.person_ids`` reads them for the person).
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from nudge.core.identity import merged_users
from nudge.core.warehouse.connection import transaction
from nudge.core.warehouse.locks import MERGES, exclusive

EXIT_REASON = "merged"


def follow_merges(con: duckdb.DuckDBPyConnection, as_of: datetime) -> int:
    """Give the entries and undecided messages of merged ids to their person; return how many
    entries moved."""
    relation = merged_users(con)
    # Journeys planned concurrently (server warehouse) each follow merges first: one at a time,
    # the later ones find nothing left to move.
    with exclusive(con, MERGES), transaction(con):
        moved = con.execute(
            f"""update nudge.journey_entries e set user_id = m.merged_into
                from {relation} m where m.user_id = e.user_id"""
        ).fetchone()[0]
        con.execute(
            f"""update nudge.outbox o set user_id = m.merged_into
                from {relation} m
                where m.user_id = o.user_id and not exists (
                    select 1 from nudge.delivery_ledger l
                    where l.idempotency_key = o.idempotency_key)"""
        )
        if moved:
            con.execute(
                """update nudge.journey_entries
                   set status = 'exited', exit_reason = ?, ended_at = ?, next_wake_at = null
                   where entry_id in (
                       select entry_id from (
                           select entry_id, row_number() over (
                               partition by journey, user_id order by started_at, entry_id
                           ) as rank
                           from nudge.journey_entries where status = 'active')
                       where rank > 1)""",
                [EXIT_REASON, as_of],
            )
    return moved
