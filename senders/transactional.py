"""Transactional sends: one message rendered and handed to its provider at once, outside a run.

The collector's ``POST /v1/send/{channel}`` (``collector.transactional``, docs/transactional.md)
calls ``TransactionalSender.send``. A pipeline run may hold the warehouse (DuckDB allows one
writing process), so the collector never opens it: every send is recorded in a store of its own,
``<NUDGE_HOME>/transactional.sqlite3`` (SQLite in WAL mode, full sync), following the ledger
protocol of docs/delivery.md:

1. **intent**: the row (status ``sending``, ``attempted_at`` null) and the claim of the request's
   ``Idempotency-Key`` are committed in one transaction; a second request with the same key finds
   the row and never sends;
2. **hand-over**: ``attempted_at`` is committed right before the provider gets the message;
3. **outcome**: ``sent`` or ``failed`` with the reason, and the answer the client got, which a
   repeat of the request with the same key gets again for 24 hours.

After a crash (``reconcile``, when the collector starts): a row never handed over is deleted
with its claim (nothing left the building; the client's retry sends it); a row handed over is
failed, ``outcome unknown``, and never resent, as the dispatch's crash rule says.

The send stage of each run copies the rows with an outcome into ``nudge.delivery_ledger``
(``copy_into_ledger``: journey null, the template, channel, status, provider id and reason),
keyed by the delivery id, so a copy repeated after a crash inserts nothing twice. The same stage
copies ``nudge.suppressed_addresses`` into the store (``mirror_suppressed_addresses``): the
addresses that bounced or complained, which the collector cannot read from the warehouse; the
collector adds those its own provider callbacks report as they arrive.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from nudge.core.clock import utc_now
from nudge.core.dsl.spec import Content
from nudge.core.landing.suppressions import is_suppressed
from nudge.core.warehouse.connection import warehouse_file
from senders.addresses import NOT_ONE_ADDRESS, is_bare_mailbox
from senders.dispatch import render_message, send_now
from senders.ledger import IN_FLIGHT_REASON, transaction
from senders.policy import template_address
from senders.providers import Provider, SendOutcome
from senders.settings import DispatchSettings
from senders.templates import RenderError, TemplateRenderer

STORE_NAME = "transactional.sqlite3"
# How long an Idempotency-Key answers with its first answer.
KEY_LIFETIME = timedelta(hours=24)
SCHEMA = """
create table if not exists sends (
    delivery_id text primary key,
    scope text not null,             -- a hash of the credential the request came with
    idempotency_key text,            -- null once released (expired, or a retry may send again)
    fingerprint text not null,       -- a hash of the channel and the request body
    user_id text not null,
    channel text not null,
    template text not null,
    address text,
    provider text,
    status text not null,            -- sending, sent, failed
    reason text,
    provider_message_id text,
    details text,
    queued_at text not null,
    attempted_at text,
    completed_at text,
    answer_status integer,
    answer text,                     -- the JSON body the client got
    copied_at text                   -- when a run copied it into nudge.delivery_ledger
);
create unique index if not exists sends_key on sends (scope, idempotency_key);
create table if not exists suppressed_addresses (
    channel text not null,
    address text not null,           -- lower case
    reason text not null,
    primary key (channel, address)
);
"""


def store_path(warehouse: Path) -> Path:
    """The store sits beside the warehouse file, under the workspace home."""
    return warehouse.parent / STORE_NAME


class Refusal(Exception):
    """A request answered with a 4xx: nothing was recorded or sent."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class InProgress(Exception):
    """Another request with the same Idempotency-Key is being sent: wait for its answer
    (``TransactionalSender.settled``), outside the thread that sends."""

    def __init__(self, delivery_id: str) -> None:
        super().__init__(delivery_id)
        self.delivery_id = delivery_id


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]


@dataclass(frozen=True)
class SendRequest:
    """One request, checked for shape by the collector. ``email`` is the identifiers' email, if
    given; ``to`` the address the request names."""

    channel: str
    template: str
    user_id: str
    email: str | None
    to: str | None
    message_data: Mapping[str, Any]
    scope: str
    idempotency_key: str | None
    fingerprint: str


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


class TransactionalStore:
    """The store's file; one connection shared by threads behind a lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._con = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._lock = threading.Lock()
        with self._lock:
            self._con.execute("pragma journal_mode=wal")
            self._con.execute("pragma synchronous=full")
            self._con.executescript(SCHEMA)

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._con.execute("begin immediate")
            try:
                yield self._con
            except BaseException:
                self._con.execute("rollback")
                raise
            self._con.execute("commit")

    def _row(self, where: str, params: tuple[Any, ...]) -> dict[str, Any] | None:
        with self._lock:
            cursor = self._con.execute(f"select * from sends where {where}", params)
            row = cursor.fetchone()
            names = [d[0] for d in cursor.description]
        return dict(zip(names, row, strict=True)) if row else None

    def claimed(self, scope: str, key: str, now: datetime) -> dict[str, Any] | None:
        """The live row holding ``key`` for the credential ``scope``, if any."""
        return self._row(
            "scope = ? and idempotency_key = ? and queued_at > ?",
            (scope, key, _iso(now - KEY_LIFETIME)),
        )

    def claim(self, request: SendRequest, row: Mapping[str, Any], now: datetime) -> str | None:
        """Write the intent ``row`` and claim the request's key in one transaction; the
        delivery id of the live row already holding the key instead, if another request got
        there first (then nothing is written)."""
        with self._writing() as con:
            if request.idempotency_key is not None:
                con.execute(
                    "update sends set idempotency_key = null "
                    "where scope = ? and idempotency_key = ? and queued_at <= ?",
                    (request.scope, request.idempotency_key, _iso(now - KEY_LIFETIME)),
                )
                held = con.execute(
                    "select delivery_id from sends where scope = ? and idempotency_key = ?",
                    (request.scope, request.idempotency_key),
                ).fetchone()
                if held:
                    return str(held[0])
            con.execute(
                f"insert into sends ({', '.join(row)}) values ({', '.join('?' * len(row))})",
                tuple(row.values()),
            )
        return None

    def get(self, delivery_id: str) -> dict[str, Any] | None:
        return self._row("delivery_id = ?", (delivery_id,))

    def handed_over(self, delivery_id: str, now: datetime) -> None:
        with self._writing() as con:
            con.execute(
                "update sends set attempted_at = ? where delivery_id = ?", (_iso(now), delivery_id)
            )

    def finish(self, delivery_id: str, outcome: SendOutcome, answer: Answer, now: datetime) -> None:
        """Record the outcome and the answer. A failure that delivered nothing (not permanent,
        not ambiguous) releases the key: the client's retry with it sends again."""
        release = outcome.status == "failed" and not outcome.permanent
        with self._writing() as con:
            con.execute(
                """update sends set status = ?, reason = ?, provider_message_id = ?, details = ?,
                       completed_at = ?, answer_status = ?, answer = ?,
                       idempotency_key = case when ? then null else idempotency_key end
                   where delivery_id = ?""",
                (outcome.status, outcome.reason, outcome.provider_message_id,
                 json.dumps(outcome.details, sort_keys=True) if outcome.details else None,
                 _iso(now), answer.status, json.dumps(answer.body), release, delivery_id),
            )  # fmt: skip

    def reconcile(self, now: datetime) -> tuple[int, int]:
        """Rows a stopped collector left in ``sending``: never handed over, deleted (their key is
        free again); handed over, failed with an unknown outcome, never resent. Returns
        ``(released, unknown)``."""
        with self._writing() as con:
            released = con.execute(
                "delete from sends where status = 'sending' and attempted_at is null"
            ).rowcount
            answer = json.dumps({"meta": {"error": IN_FLIGHT_REASON}})
            unknown = con.execute(
                """update sends set status = 'failed', reason = ?, completed_at = ?,
                       answer_status = 502, answer = ?
                   where status = 'sending'""",
                (IN_FLIGHT_REASON, _iso(now), answer),
            ).rowcount
        return released, unknown

    def suppressed_address(self, channel: str, address: str) -> str | None:
        """Why ``address`` must not get ``channel`` messages (bounced, complained), or None."""
        with self._lock:
            row = self._con.execute(
                "select reason from suppressed_addresses where channel = ? and address = ?",
                (channel, address.strip().lower()),
            ).fetchone()
        return str(row[0]) if row else None

    def uncopied(self) -> list[dict[str, Any]]:
        """Rows with an outcome that no run has copied into the ledger yet."""
        with self._lock:
            cursor = self._con.execute(
                "select * from sends where status <> 'sending' and copied_at is null"
            )
            names = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
        return [
            {k: None if v is None else str(v) for k, v in zip(names, r, strict=True)} for r in rows
        ]

    def mark_copied(self, delivery_ids: list[str], now: datetime) -> None:
        """Mark rows copied, and forget copied rows whose key no longer answers (24 hours)."""
        with self._writing() as con:
            con.executemany(
                "update sends set copied_at = ? where delivery_id = ?",
                [(_iso(now), delivery_id) for delivery_id in delivery_ids],
            )
            con.execute(
                "delete from sends where copied_at is not null and queued_at <= ?",
                (_iso(now - KEY_LIFETIME),),
            )

    def add_suppressed_addresses(self, rows: list[tuple[str, str, str]]) -> None:
        """``(channel, address, reason)`` rows; an address is never taken off (a dead address
        stays dead, as in ``nudge.suppressed_addresses``)."""
        with self._writing() as con:
            con.executemany(
                "insert or ignore into suppressed_addresses values (?, lower(?), ?)", rows
            )

    def close(self) -> None:
        with self._lock:
            self._con.close()


def delivery_id_for(request: SendRequest, now: datetime) -> str:
    """Derived from the credential, the Idempotency-Key and when it was first used (a key used
    again after 24 hours is a new message); random without a key."""
    if request.idempotency_key is None:
        return f"txn_{uuid.uuid4().hex}"
    seed = f"{request.scope}\n{request.idempotency_key}\n{_iso(now)}"
    return f"txn_{hashlib.sha256(seed.encode()).hexdigest()[:32]}"


def _answer_of(row: Mapping[str, Any]) -> Answer:
    return Answer(int(row["answer_status"]), json.loads(row["answer"]))


def _settled(row: Mapping[str, Any], request: SendRequest) -> Answer:
    """The answer a row holding ``request``'s key gave; ``InProgress`` while it has none."""
    if row["fingerprint"] != request.fingerprint:
        raise Refusal(
            422,
            f"Idempotency-Key {request.idempotency_key!r} was used for a different request "
            "in the last 24 hours; use a new key for a new message",
        )
    if row["status"] == "sending":
        raise InProgress(row["delivery_id"])
    return _answer_of(row)


def _failure_answer(outcome: SendOutcome, provider: str, delivery_id: str) -> Answer:
    """503 when the provider could not take it now (nothing delivered, try again), else 502."""
    status = 503 if not outcome.permanent else 502
    return Answer(
        status, {"meta": {"error": f"{provider}: {outcome.reason}"}, "delivery_id": delivery_id}
    )


class TransactionalSender:
    """Renders, checks and sends transactional requests through the configured providers.

    ``providers(channel)`` opens the channel's provider (``Refusal`` when there is none);
    ``suppressed_ids()`` is the collector's suppression list. One provider serves one request at
    a time per free slot (its ``concurrency``); providers of one message at a time (SMTP) are
    closed after each message, so no idle connection goes stale between requests."""

    def __init__(
        self,
        store: TransactionalStore,
        content: Callable[[], Content],
        providers: Callable[[str], Provider],
        suppressed_ids: Callable[[], frozenset[str]],
        settings: DispatchSettings,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.content = content
        self.providers = providers
        self.suppressed_ids = suppressed_ids
        self.settings = settings
        self.now = now
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._slots_lock = threading.Lock()

    def replay(self, request: SendRequest) -> Answer | None:
        """The first answer to a request with the same key (None: no such request);
        ``InProgress`` while that request is being sent, ``Refusal`` 422 when it had another
        body."""
        if request.idempotency_key is None:
            return None
        row = self.store.claimed(request.scope, request.idempotency_key, self.now())
        return None if row is None else _settled(row, request)

    def settled(self, delivery_id: str, request: SendRequest) -> Answer | None:
        """The answer of the request holding ``request``'s key, None while it is being sent."""
        row = self.store.get(delivery_id)
        if row is None:  # cannot happen while this collector runs: rows are kept 24 hours
            raise Refusal(409, "the request with this Idempotency-Key is gone; send it again")
        try:
            return _settled(row, request)
        except InProgress:
            return None

    def send(self, request: SendRequest) -> Answer:
        """Render, check and send ``request``, or answer as the first request with its key was
        answered. Raises ``Refusal`` for a request that cannot be sent, ``InProgress`` when
        another request with its key is being sent."""
        answered = self.replay(request)
        if answered is not None:
            return answered
        template = {t.name: t for t in self.content().templates}.get(request.template)
        if template is None or template.channel != request.channel:
            raise Refusal(
                404,
                f"no {request.channel} template named {request.template!r} in the content "
                "(transactional_message_id names a template)",
            )
        address = self._address(request, template_address(template))
        self._check_suppressed(request, address)
        provider = self.providers(request.channel)
        now = self.now()
        delivery_id = delivery_id_for(request, now)
        try:
            message = render_message(TemplateRenderer([template]), {
                "template": template.name, "channel": request.channel, "topic": None,
                "user_id": request.user_id, "address": address, "journey": "", "step": "",
                "traits": json.dumps({"email": request.email} if request.email else {}),
                "event_properties": json.dumps(dict(request.message_data)),
                "delivery_id": delivery_id, "idempotency_key": delivery_id,
            })  # fmt: skip
        except RenderError as err:
            raise Refusal(422, str(err)) from None
        row = {
            "delivery_id": delivery_id, "scope": request.scope,
            "idempotency_key": request.idempotency_key, "fingerprint": request.fingerprint,
            "user_id": request.user_id, "channel": request.channel, "template": template.name,
            "address": address, "provider": provider.name, "status": "sending",
            "queued_at": _iso(now),
        }  # fmt: skip
        holder = self.store.claim(request, row, now)
        if holder is not None:
            raise InProgress(holder)
        with self._slot(request.channel, provider):
            self.store.handed_over(delivery_id, self.now())
            outcome = send_now(provider, message, self.settings)
            if getattr(provider, "concurrency", 1) == 1:
                provider.close()
        if outcome.status == "sent":
            queued_at = int(now.replace(tzinfo=UTC).timestamp())  # now is naive UTC
            answer = Answer(200, {"delivery_id": delivery_id, "queued_at": queued_at})
        else:
            answer = _failure_answer(outcome, provider.name, delivery_id)
        self.store.finish(delivery_id, outcome, answer, self.now())
        return answer

    def _address(self, request: SendRequest, template_url: str | None) -> str:
        """Where the message goes: ``to``, else what the identifiers say (an email for email,
        the user for in-app), else the template's URL (webhook, slack)."""
        channel = request.channel
        if channel == "email":
            address = request.to or request.email
        elif channel == "in_app":
            address = request.user_id
        elif channel in ("webhook", "slack"):
            address = request.to or template_url
        else:
            address = request.to
        if not address:
            what = {"email": "'to' or identifiers.email", "sms": "'to' (a phone number)",
                    "push": "'to' (the device token)"}.get(channel, "'to' (a URL)")  # fmt: skip
            raise Refusal(400, f"missing recipient: {channel} messages need {what}")
        if channel == "email" and not is_bare_mailbox(address):
            raise Refusal(
                400,
                f"recipient {address!r} is {NOT_ONE_ADDRESS}: send one address (name@domain),"
                " without a display name",
            )
        return address

    def _check_suppressed(self, request: SendRequest, address: str) -> None:
        ids = self.suppressed_ids()
        for identifier in (request.user_id, request.email, address):
            if identifier and is_suppressed(identifier, ids):
                raise Refusal(
                    400,
                    f"recipient suppressed: {identifier!r} is on the suppression list "
                    "(POST /api/v1/customers/{id}/unsuppress lets them back in)",
                )
        reason = self.store.suppressed_address(request.channel, address)
        if reason is not None:
            raise Refusal(
                400, f"recipient suppressed: the {request.channel} address {address!r} {reason}"
            )

    @contextmanager
    def _slot(self, channel: str, provider: Provider) -> Iterator[None]:
        """At most the provider's ``concurrency`` messages in flight (one for SMTP)."""
        with self._slots_lock:
            slots = self._slots.setdefault(
                channel, threading.BoundedSemaphore(max(1, getattr(provider, "concurrency", 1)))
            )
        with slots:
            yield


# --- the send stage's side (in the process that holds the warehouse) --------------------------

_COPY = """insert into nudge.delivery_ledger (idempotency_key, delivery_id, run_id, as_of, user_id,
        journey, step, channel, template, topic, provider, address, status, reason,
        provider_message_id, queued_at, attempted_at, completed_at, permanent, attempts,
        next_attempt_at, details)
    select delivery_id, delivery_id, $run_id, $as_of, user_id, null, null, channel, template, null,
        provider, address, status, reason, provider_message_id, queued_at::timestamp,
        attempted_at::timestamp, completed_at::timestamp, status = 'failed', 1, null, details
    from _nudge_transactional
    on conflict (idempotency_key) do nothing"""


def copy_into_ledger(con: duckdb.DuckDBPyConnection, *, run_id: str, as_of: datetime) -> int:
    """Copy the transactional sends with an outcome not yet copied into the ledger, then mark
    them copied. The ledger's key makes a copy repeated after a crash insert nothing twice.
    Returns how many rows were copied."""
    store = TransactionalStore(store_path(warehouse_file(con)))
    try:
        rows = store.uncopied()
        if rows:
            frame = pl.DataFrame(rows, schema={name: pl.String for name in rows[0]})
            with transaction(con):
                con.register("_nudge_transactional", frame)
                try:
                    con.execute(_COPY, {"run_id": run_id, "as_of": as_of})
                finally:
                    con.unregister("_nudge_transactional")
            store.mark_copied([row["delivery_id"] for row in rows], utc_now())
        return len(rows)
    finally:
        store.close()


def mirror_suppressed_addresses(con: duckdb.DuckDBPyConnection) -> int:
    """Give the store the warehouse's ``nudge.suppressed_addresses`` (bounces, complaints,
    numbers that do not exist), which the collector checks before a transactional send; the
    collector adds the ones its own callbacks report at once. Returns how many the warehouse
    holds."""
    rows = con.execute("select channel, address, reason from nudge.suppressed_addresses").fetchall()
    store = TransactionalStore(store_path(warehouse_file(con)))
    try:
        store.add_suppressed_addresses(rows)
    finally:
        store.close()
    return len(rows)
