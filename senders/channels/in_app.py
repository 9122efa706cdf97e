"""In-app messages: a per-user inbox in a SQLite file under the workspace home.

Not in the warehouse: a pipeline run holds the DuckDB file (one writer process), and the inbox
must stay readable (and markable) while it does. SQLite in WAL mode lets readers work while the
sender writes. A message is keyed by its delivery id, so storing it again (a retry) changes
nothing. Serving the inbox over HTTP is the collector's; ``InboxStore`` is what it reads.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from senders.providers import RenderedMessage, SendOutcome

SCHEMA = """
create table if not exists inbox_messages (
    delivery_id text primary key,
    user_id text not null,
    journey text,
    step text,
    template text,
    content text not null,  -- the rendered fields (title, body, data, ...) as JSON
    created_at text not null,
    read_at text,
    dismissed_at text
);
create index if not exists inbox_messages_user on inbox_messages (user_id, created_at);
"""


@dataclass(frozen=True)
class InboxMessage:
    delivery_id: str
    user_id: str
    content: dict[str, Any]
    created_at: str
    read_at: str | None
    dismissed_at: str | None


class UnknownMessage(LookupError):
    """The user has no message with this delivery id."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class InboxStore:
    """The inbox file; safe to use from several threads (one connection, a lock)."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._con = sqlite3.connect(path, check_same_thread=False, timeout=30)
        self._lock = threading.Lock()
        with self._lock, self._con:
            self._con.execute("pragma journal_mode=wal")
            self._con.executescript(SCHEMA)

    def add(self, message: RenderedMessage) -> bool:
        """Store ``message``; False when its delivery id was already stored."""
        content = {k: v for k, v in message.content.items() if k != "unsubscribe_url"}
        with self._lock, self._con:
            cursor = self._con.execute(
                """insert into inbox_messages
                   (delivery_id, user_id, journey, step, template, content, created_at)
                   values (?, ?, ?, ?, ?, ?, ?) on conflict (delivery_id) do nothing""",
                (message.delivery_id, message.user_id, message.journey, message.step,
                 message.template, json.dumps(content), _now()),
            )  # fmt: skip
        return cursor.rowcount == 1

    def messages(
        self,
        user_id: str,
        *,
        include_dismissed: bool = False,
        limit: int | None = None,
        before: str | None = None,
    ) -> list[InboxMessage]:
        """The user's messages, newest first: at most ``limit``, those after (older than) the
        message ``before`` names. Raises ``UnknownMessage`` when the user has no such message."""
        where, params = "", [user_id]
        if not include_dismissed:
            where += " and dismissed_at is null"
        if before is not None:
            where += " and (created_at, delivery_id) < (?, ?)"
            created_at = self.created_at(user_id, before)
            if created_at is None:
                raise UnknownMessage(before)
            params += [created_at, before]
        with self._lock:
            rows = self._con.execute(
                f"""select delivery_id, user_id, content, created_at, read_at, dismissed_at
                    from inbox_messages where user_id = ? {where}
                    order by created_at desc, delivery_id desc limit ?""",
                (*params, -1 if limit is None else limit),
            ).fetchall()
        return [InboxMessage(d, u, json.loads(c), t, r, x) for d, u, c, t, r, x in rows]

    def unread(self, user_id: str) -> list[str]:
        """The delivery ids of the user's messages neither read nor dismissed."""
        with self._lock:
            rows = self._con.execute(
                "select delivery_id from inbox_messages "
                "where user_id = ? and read_at is null and dismissed_at is null",
                (user_id,),
            ).fetchall()
        return [delivery_id for (delivery_id,) in rows]

    def mark_read(self, user_id: str, delivery_id: str) -> bool:
        return self._stamp("read_at", user_id, [delivery_id]) == 1

    def mark_all_read(self, user_id: str, delivery_ids: list[str]) -> int:
        """Mark the user's messages ``delivery_ids`` read (those of ``unread``); how many."""
        return self._stamp("read_at", user_id, delivery_ids)

    def dismiss(self, user_id: str, delivery_id: str) -> bool:
        return self._stamp("dismissed_at", user_id, [delivery_id]) == 1

    def created_at(self, user_id: str, delivery_id: str) -> str | None:
        """When the user's message was stored; None when the user has no such message."""
        with self._lock:
            row = self._con.execute(
                "select created_at from inbox_messages where user_id = ? and delivery_id = ?",
                (user_id, delivery_id),
            ).fetchone()
        return None if row is None else row[0]

    def _stamp(self, column: str, user_id: str, delivery_ids: list[str]) -> int:
        """Set ``column`` to now where it is not set yet; the number of the user's messages
        among ``delivery_ids`` (already stamped ones count: stamping is idempotent)."""
        with self._lock, self._con:
            cursor = self._con.executemany(
                f"update inbox_messages set {column} = coalesce({column}, ?) "
                "where user_id = ? and delivery_id = ?",
                [(_now(), user_id, delivery_id) for delivery_id in delivery_ids],
            )
        return cursor.rowcount

    def close(self) -> None:
        with self._lock:
            self._con.close()


class InboxProvider:
    """Stores in-app messages in the inbox file (opened lazily, closed after each dispatch)."""

    name = "inbox"
    channel = "in_app"
    label = "inbox"

    def __init__(self, path: Path):
        self.path = path
        self._store: InboxStore | None = None

    def send(self, message: RenderedMessage) -> SendOutcome:
        if self._store is None:
            self._store = InboxStore(self.path)
        try:
            self._store.add(message)
        except sqlite3.Error as err:
            return SendOutcome.failed(f"inbox {self.path}: {err}", permanent=False)
        return SendOutcome.sent(f"inbox-{message.delivery_id}")

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
