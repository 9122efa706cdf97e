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

EXIT_REASON = "merged"
# The transition that records an entry moving from a merged id to its person (detail: the id).
MERGED_ACTION = "merged"

# The active entries that do not go on: all but the earliest of a person's in a journey.
_LOSERS = """select entry_id from (
        select entry_id, row_number() over (
            partition by journey, user_id order by started_at, entry_id) as rank
        from nudge.journey_entries where status = 'active')
    where rank > 1"""


def _record(con: duckdb.DuckDBPyConnection, select_sql: str, params: list[object]) -> None:
    """Insert the transitions of ``select_sql`` (``entry_id, journey, user_id, from_step,
    to_step, action, detail``), numbered after the table's ``seq`` in entry order."""
    con.execute(
        f"""insert into nudge.journey_transitions
                (run_id, as_of, entry_id, journey, user_id, from_step, to_step, action, detail,
                 seq)
            select ?, ?, t.*,
                   (select coalesce(max(seq), 0) from nudge.journey_transitions)
                   + row_number() over (order by t.entry_id, t.action)
            from ({select_sql}) t(entry_id, journey, user_id, from_step, to_step, action, detail)""",
        params,
    )


def follow_merges(con: duckdb.DuckDBPyConnection, as_of: datetime, run_id: str) -> int:
    """Give the entries and undecided messages of merged ids to their person; return how many
    entries moved. Each move is a ``merged`` transition in the entry's history, and each entry
    that then does not go on exits with reason ``merged``, so ``nudge explain`` shows both."""
    relation = merged_users(con)
    with transaction(con):
        _record(
            con,
            f"""select e.entry_id, e.journey, m.merged_into, e.current_step, e.current_step,
                       '{MERGED_ACTION}', e.user_id
                from nudge.journey_entries e join {relation} m on m.user_id = e.user_id""",
            [run_id, as_of],
        )
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
            _record(
                con,
                f"""select entry_id, journey, user_id, current_step, null, 'exited', ?
                    from nudge.journey_entries where entry_id in ({_LOSERS})""",
                [run_id, as_of, EXIT_REASON],
            )
            con.execute(
                f"""update nudge.journey_entries
                   set status = 'exited', exit_reason = ?, ended_at = ?, next_wake_at = null
                   where entry_id in ({_LOSERS})""",
                [EXIT_REASON, as_of],
            )
    return moved
