"""The hand-over journal: what the ledger protocol commits per turn, in a small SQLite file.

A turn of the dispatch (docs/delivery.md) must be on disk before its messages leave: the
outcomes that came back and the messages now handed over. A DuckDB commit with an indexed
``UPDATE`` costs milliseconds to tens of milliseconds on a busy machine, and a provider's free
slots wait for it; appending the same facts to a SQLite file in WAL mode with full sync costs a
fraction of that. So each turn is written here, and the journal is folded into
``nudge.delivery_ledger`` in one DuckDB transaction at the end of each batch, and before a
dispatch reconciles what a stopped run left (``fold``): a crash between the two loses nothing,
since the journal is folded again (folding is idempotent) and only then emptied.

The file sits beside the warehouse file (``<warehouse>.handovers``); only the process holding
the warehouse writes it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from nudge.core.warehouse.connection import warehouse_file

SCHEMA = """
create table if not exists handovers (
    idempotency_key text primary key,
    attempted_at text not null,
    status text,                -- null while in flight
    reason text,
    permanent integer,
    next_attempt_at text,
    provider_message_id text,
    details text,
    completed_at text
)
"""
# What an outcome sets, in the order the fold passes them to DuckDB, with their SQL types.
OUTCOME_COLUMNS = {
    "status": "varchar",
    "reason": "varchar",
    "permanent": "boolean",
    "next_attempt_at": "timestamp",
    "provider_message_id": "varchar",
    "details": "varchar",
    "completed_at": "timestamp",
}


def journal_path(con: duckdb.DuckDBPyConnection) -> Path:
    """``<warehouse file>.handovers`` for the connection's database file (on Postgres, the
    workspace's ``warehouse.duckdb`` path, which names the journal and nothing else)."""
    path = warehouse_file(con)
    if path is None:
        raise ValueError("the delivery ledger needs a warehouse file, not an in-memory database")
    return Path(f"{path}.handovers")


class HandoverJournal:
    def __init__(self, path: Path):
        self.path = path
        self._con = sqlite3.connect(path, isolation_level=None)
        self._con.execute("pragma journal_mode=wal")
        self._con.execute("pragma synchronous=full")
        self._con.execute(SCHEMA)

    @classmethod
    def beside(cls, con: duckdb.DuckDBPyConnection) -> HandoverJournal:
        return cls(journal_path(con))

    def write(
        self, *, outcomes: Sequence[Mapping[str, Any]], keys: Sequence[str], now: datetime
    ) -> None:
        """One committed turn: ``outcomes`` (rows of ``key`` plus ``OUTCOME_COLUMNS`` but
        ``completed_at``) of messages handed over earlier, and ``keys`` handed over now.

        One statement over one JSON parameter, committed on its own (autocommit): the calling
        thread gives up the interpreter lock once for the whole turn rather than once per row
        and per statement, and with a hundred sender threads wanting the lock, getting it back
        cost more than the row itself. A key handed over now is inserted without an outcome; an
        outcome fills its row only while it has none."""
        if not outcomes and not keys:
            return
        stamp = now.isoformat()
        rows = [[key, None, None, None, None, None, None] for key in keys]
        rows.extend(
            [o["key"], o["status"], o["reason"], o["permanent"],
             o["next_attempt_at"].isoformat() if o["next_attempt_at"] else None,
             o["provider_message_id"], o["details"]]
            for o in outcomes
        )  # fmt: skip
        self._con.execute(
            """insert into handovers (idempotency_key, attempted_at, status, reason, permanent,
                   next_attempt_at, provider_message_id, details, completed_at)
               select value ->> 0, ?1, value ->> 1, value ->> 2, value ->> 3, value ->> 4,
                      value ->> 5, value ->> 6, case when value ->> 1 is null then null else ?1 end
               from json_each(?2) where true
               on conflict (idempotency_key) do update set
                   status = excluded.status, reason = excluded.reason,
                   permanent = excluded.permanent, next_attempt_at = excluded.next_attempt_at,
                   provider_message_id = excluded.provider_message_id,
                   details = excluded.details, completed_at = excluded.completed_at
               where handovers.status is null and excluded.status is not null""",
            (stamp, json.dumps(rows)),
        )

    def fold(self, ledger: duckdb.DuckDBPyConnection, *, keep: Collection[str] = ()) -> int:
        """Apply the journal to the ledger in one DuckDB transaction, then empty it but for the
        rows of ``keep``: messages still in flight, whose outcome a later turn writes (folding
        them again is harmless). Returns how many messages it held."""
        rows = self._con.execute(
            f"select idempotency_key, attempted_at, {', '.join(OUTCOME_COLUMNS)} from handovers"
        ).fetchall()
        if not rows:
            return 0
        columns = list(zip(*rows, strict=True))
        params: dict[str, Any] = {"key": list(columns[0]), "attempted_at": list(columns[1])}
        for index, name in enumerate(OUTCOME_COLUMNS, start=2):
            params[name] = list(columns[index])
        params["permanent"] = [None if p is None else bool(p) for p in params["permanent"]]
        unnested = ", ".join(
            f"unnest(${name}::{kind}[]) as {name}"
            for name, kind in {"key": "varchar", "attempted_at": "varchar",
                               **{n: "varchar" if k == "timestamp" else k
                                  for n, k in OUTCOME_COLUMNS.items()}}.items()
        )  # fmt: skip
        ledger.begin()
        try:
            ledger.execute(
                f"""update nudge.delivery_ledger l set
                       attempted_at = coalesce(l.attempted_at, j.attempted_at::timestamp),
                       status = coalesce(j.status, l.status),
                       reason = case when j.status is null then l.reason else j.reason end,
                       permanent = case when j.status is null then l.permanent
                                        else j.permanent end,
                       next_attempt_at = case when j.status is null then l.next_attempt_at
                                              else j.next_attempt_at::timestamp end,
                       provider_message_id = case when j.status is null
                                                  then l.provider_message_id
                                                  else j.provider_message_id end,
                       details = case when j.status is null then l.details else j.details end,
                       completed_at = case when j.status is null then l.completed_at
                                           else j.completed_at::timestamp end
                    from (select {unnested}) j
                    where l.idempotency_key = j.key and l.status = 'sending'""",
                params,
            )
        except BaseException:
            ledger.rollback()
            raise
        ledger.commit()
        if keep:
            self._con.execute(
                "delete from handovers where idempotency_key not in (select value from json_each(?))",
                [json.dumps(list(keep))],
            )
        else:
            self._con.execute("delete from handovers")
        return len(rows)

    def close(self) -> None:
        self._con.close()
