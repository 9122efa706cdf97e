"""The hand-over journal: what the ledger protocol commits per turn, in a small SQLite file.

A turn of the dispatch (docs/delivery.md) must be on disk before its messages leave: the
outcomes that came back and the messages now handed over. A DuckDB commit with an indexed
``UPDATE`` costs milliseconds to tens of milliseconds on a busy machine, and a provider's free
slots wait for it; appending the same facts to a SQLite file in WAL mode with full sync costs a
fraction of that. So each turn is written here, and the journal is folded into
``nudge.delivery_ledger`` in one DuckDB transaction at the end of each batch, and before a
dispatch reconciles what a stopped run left (``fold``): a crash between the two loses nothing,
since the journal is folded again (folding is idempotent) and only then emptied.

The file sits beside the warehouse file (``<warehouse>.handovers``). On DuckDB only the process
holding the warehouse writes it; on a server warehouse one sender step per channel may dispatch at
once, so each row names its channel and a dispatch folds and empties only its own channels' rows
(``channels``): another channel's messages in flight keep their rows until their outcome is in.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Mapping, Sequence
from contextlib import closing
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
    completed_at text,
    channel text                -- null in rows written before channels were recorded
)
"""
# How long a write waits for another dispatch's turn to commit (SQLite allows one at a time).
BUSY_TIMEOUT_SECONDS = 30.0
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


def _connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_SECONDS)
    con.execute("pragma journal_mode=wal")
    con.execute("pragma synchronous=full")
    return con


def journal_path(con: duckdb.DuckDBPyConnection) -> Path:
    """``<warehouse file>.handovers`` for the connection's database file (on Postgres, the
    workspace's ``warehouse.duckdb`` path, which names the journal and nothing else)."""
    path = warehouse_file(con)
    if path is None:
        raise ValueError("the delivery ledger needs a warehouse file, not an in-memory database")
    return Path(f"{path}.handovers")


class HandoverJournal:
    """The journal of one dispatch, of ``channels`` (None: every channel)."""

    def __init__(self, path: Path, channels: Collection[str] | None = None):
        self.path = path
        self.channels = None if channels is None else sorted(channels)
        self._con = _connect(path)
        self._con.execute(SCHEMA)
        columns = {row[1] for row in self._con.execute("pragma table_info(handovers)")}
        if "channel" not in columns:  # a journal left by a version without the column
            try:
                self._con.execute("alter table handovers add column channel text")
            except sqlite3.OperationalError as error:  # another dispatch added it meanwhile
                if "duplicate column" not in str(error):
                    raise

    @staticmethod
    def create(path: Path) -> None:
        """Make a new journal file (WAL mode, the table): several syncs to disk, tens of
        milliseconds, which a dispatch does on another thread while it decides its policies,
        since a journal not yet on disk holds nothing to fold (``dispatch``)."""
        with closing(_connect(path)) as con:
            con.execute(SCHEMA)

    @classmethod
    def beside(
        cls, con: duckdb.DuckDBPyConnection, channels: Collection[str] | None = None
    ) -> HandoverJournal:
        return cls(journal_path(con), channels)

    def _own(self) -> tuple[str, list[Any]]:
        """SQL condition and parameters: the rows of this dispatch's channels (and rows of no
        recorded channel, which only a journal from before channels were recorded holds)."""
        if self.channels is None:
            return "true", []
        return (
            "(channel is null or channel in (select value from json_each(?)))",
            [json.dumps(self.channels)],
        )

    def write(
        self,
        *,
        outcomes: Sequence[Mapping[str, Any]],
        handed: Sequence[tuple[str, str]],
        now: datetime,
    ) -> None:
        """One committed turn: ``outcomes`` (rows of ``key`` plus ``OUTCOME_COLUMNS`` but
        ``completed_at``) of messages handed over earlier, and ``handed``, the ``(key, channel)``
        of the messages handed over now.

        One statement over one JSON parameter, committed on its own (autocommit): the calling
        thread gives up the interpreter lock once for the whole turn rather than once per row
        and per statement, and with a hundred sender threads wanting the lock, getting it back
        cost more than the row itself. A key handed over now is inserted without an outcome; an
        outcome fills its row only while it has none."""
        if not outcomes and not handed:
            return
        stamp = now.isoformat()
        rows = [[key, channel, None, None, None, None, None, None] for key, channel in handed]
        rows.extend(
            [o["key"], None, o["status"], o["reason"], o["permanent"],
             o["next_attempt_at"].isoformat() if o["next_attempt_at"] else None,
             o["provider_message_id"], o["details"]]
            for o in outcomes
        )  # fmt: skip
        self._con.execute(
            """insert into handovers (idempotency_key, channel, attempted_at, status, reason,
                   permanent, next_attempt_at, provider_message_id, details, completed_at)
               select value ->> 0, value ->> 1, ?1, value ->> 2, value ->> 3, value ->> 4,
                      value ->> 5, value ->> 6, value ->> 7,
                      case when value ->> 2 is null then null else ?1 end
               from json_each(?2) where true
               on conflict (idempotency_key) do update set
                   status = excluded.status, reason = excluded.reason,
                   permanent = excluded.permanent, next_attempt_at = excluded.next_attempt_at,
                   provider_message_id = excluded.provider_message_id,
                   details = excluded.details, completed_at = excluded.completed_at
               where handovers.status is null and excluded.status is not null""",
            (stamp, json.dumps(rows)),
        )

    def fold(
        self,
        ledger: duckdb.DuckDBPyConnection,
        *,
        keep: Collection[str] = (),
        outcomes: Sequence[Mapping[str, Any]] = (),
        now: datetime | None = None,
    ) -> int:
        """Apply the journal's rows of this dispatch's channels to the ledger in one DuckDB
        transaction, then remove them but those of ``keep``: messages still in flight, whose
        outcome a later turn writes (folding them again is harmless). Returns how many messages
        it held.

        ``outcomes`` (rows as for ``write``, completed at ``now``) are outcomes of messages whose
        hand-over is in the journal but which no turn wrote: the last answers of a dispatch go
        to the ledger with its last fold, made durable by the ledger's commit rather than by one
        more turn first. A crash before that commit leaves them handed over without an outcome,
        as a crash before their turn would."""
        own, own_params = self._own()
        rows = self._con.execute(
            f"select idempotency_key, attempted_at, {', '.join(OUTCOME_COLUMNS)} from handovers"
            f" where {own}",
            own_params,
        ).fetchall()
        if outcomes:
            rows = _with_outcomes(rows, outcomes, now)
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
        self._con.execute(
            f"delete from handovers where {own}"
            " and idempotency_key not in (select value from json_each(?))",
            [*own_params, json.dumps(list(keep))],
        )
        return len(rows)

    def close(self) -> None:
        self._con.close()


def _with_outcomes(
    rows: list[tuple[Any, ...]], outcomes: Sequence[Mapping[str, Any]], now: datetime | None
) -> list[tuple[Any, ...]]:
    """The journal's ``rows`` (key, attempted_at, ``OUTCOME_COLUMNS``) with ``outcomes`` filled
    into the rows still without one, as ``write`` would have stored them."""
    if now is None:
        raise ValueError("outcomes folded without a turn need the time they completed")
    stamp = now.isoformat()
    by_key = {o["key"]: o for o in outcomes}
    filled = []
    for key, attempted_at, status, *rest in rows:
        o = by_key.get(key)
        if status is None and o is not None:
            next_at = o["next_attempt_at"].isoformat() if o["next_attempt_at"] else None
            filled.append(
                (key, attempted_at, o["status"], o["reason"], o["permanent"], next_at,
                 o["provider_message_id"], o["details"], stamp)
            )  # fmt: skip
        else:
            filled.append((key, attempted_at, status, *rest))
    return filled
