"""``POST /v1/send/{channel}``: Customer.io's transactional API (docs/transactional.md).

Authenticated as Customer.io's App API (``Authorization: Bearer <key>``, keys from
``NUDGE_APP_API_KEYS``). The body names a template (``transactional_message_id``), the person
(``identifiers``), optionally the address (``to``) and the template's values (``message_data``).
The request is checked here; ``senders.transactional`` renders it, checks suppression, records it
and hands it to the channel's provider at once. An ``Idempotency-Key`` header makes a repeat of
the request answer as the first one did, for 24 hours, without sending again.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import threading
import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collector.bodies import Refused, read_json
from collector.customerio import person
from collector.settings import Limits
from nudge.core.checked_content import WatchedContent
from nudge.core.clock import utc_now
from nudge.core.dsl.spec import Content
from nudge.core.landing.messages import InvalidMessage
from nudge.core.landing.suppressions import SuppressionList
from nudge.core.workspace import Workspace
from senders.providers import Provider
from senders.registry import (
    CHANNELS,
    ProviderPlaces,
    choose_provider,
    open_provider,
    provider_variable,
)
from senders.settings import DispatchSettings
from senders.transactional import (
    Answer,
    InProgress,
    Refusal,
    SendRequest,
    TransactionalSender,
    TransactionalStore,
    store_path,
)
from senders.unsubscribe import MissingLiveSettings

FIELDS = frozenset(
    {"transactional_message_id", "to", "identifiers", "message_data", "send_at",
     "disable_message_retention"}
)  # fmt: skip
MAX_KEY_LENGTH = 255
# A send_at further ahead than this would be a scheduled message, which nudge does not keep.
SEND_AT_LEEWAY_SECONDS = 60
# How long a request waits for another one with its Idempotency-Key before answering 409.
IN_PROGRESS_WAIT_SECONDS = 10


def _string(value: Any, what: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Refused(400, f"{what} must be a string")
    text = str(value).strip()
    if not text:
        raise Refused(400, f"{what} is empty")
    if len(text.encode()) > 1000 or any(c in text for c in "\r\n\0"):
        raise Refused(400, f"{what} must be one value of at most 1000 bytes, without line breaks")
    return text


def parse_request(
    channel: str, body: Any, *, scope: str, idempotency_key: str | None
) -> SendRequest:
    """The request's fields, checked; ``Refused`` (400) naming the first field that is wrong."""
    if not isinstance(body, dict):
        raise Refused(400, "the body must be a JSON object")
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise Refused(
            400,
            f"unsupported field(s) {', '.join(unknown)}: nudge renders the template named by "
            "transactional_message_id; pass values in message_data",
        )
    template = _string(body.get("transactional_message_id"), "transactional_message_id")
    if template is None:
        raise Refused(400, "transactional_message_id is missing: name the template to send")
    identifiers = body.get("identifiers")
    if not isinstance(identifiers, dict) or len(identifiers) != 1:
        raise Refused(400, "identifiers must be an object with exactly one of id or email")
    ((kind, value),) = identifiers.items()
    if kind not in ("id", "email"):
        raise Refused(400, f"identifiers.{kind} is not supported: use id or email")
    text = _string(value, f"identifiers.{kind}")
    assert text is not None
    if kind == "email" and "@" not in text:
        raise Refused(400, "identifiers.email is not an email address")
    try:
        who = person(text if kind == "id" else f"email:{text}")
    except InvalidMessage as exc:
        raise Refused(400, f"identifiers.{kind}: {exc.reason}") from None
    message_data = body.get("message_data") or {}
    if not isinstance(message_data, dict):
        raise Refused(400, "message_data must be a JSON object")
    send_at = body.get("send_at")
    if send_at is not None:
        if isinstance(send_at, bool) or not isinstance(send_at, int | float):
            raise Refused(400, "send_at must be a unix timestamp in seconds")
        if send_at > time.time() + SEND_AT_LEEWAY_SECONDS:
            raise Refused(
                400,
                "send_at is in the future: nudge sends transactional messages at once; leave "
                "send_at out, or send the message when it is due",
            )
    if not isinstance(body.get("disable_message_retention", False), bool):
        raise Refused(400, "disable_message_retention must be true or false")
    fingerprint = hashlib.sha256(
        channel.encode() + b"\n" + orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    ).hexdigest()
    return SendRequest(
        channel=channel,
        template=template,
        user_id=who.user_id,
        email=who.email,
        to=_string(body.get("to"), "to"),
        message_data=message_data,
        scope=scope,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
    )


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not 0 < len(key) <= MAX_KEY_LENGTH or not key.isprintable() or not key.isascii():
        raise Refused(
            400, f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters"
        )
    return key


class _Providers:
    """Each channel's provider, opened at its first transactional send and kept open."""

    def __init__(self, workspace: Workspace) -> None:
        self.places = ProviderPlaces.of(workspace)
        self._opened: dict[str, Provider] = {}
        self._lock = threading.Lock()

    def __call__(self, channel: str) -> Provider:
        with self._lock:
            if channel not in self._opened:
                try:
                    choice = choose_provider(channel)
                    if choice is None:
                        raise Refusal(
                            400,
                            f"no {channel} provider is configured on this collector "
                            f"({provider_variable(channel)}); nothing was sent",
                        )
                    self._opened[channel] = open_provider(choice, self.places)
                except (ValueError, MissingLiveSettings) as err:
                    raise Refusal(503, f"the {channel} provider cannot start: {err}") from None
            return self._opened[channel]

    def close(self) -> None:
        with self._lock:
            for provider in self._opened.values():
                provider.close()
            self._opened.clear()


class TransactionalApi:
    """The endpoint over one workspace: its store, content and providers."""

    def __init__(
        self,
        workspace: Workspace,
        app_keys: frozenset[str],
        limits: Limits,
        suppressions: SuppressionList,
        content: WatchedContent,
    ) -> None:
        self.workspace = workspace
        self.app_keys = app_keys
        self.limits = limits
        self.suppressions = suppressions
        self.providers = _Providers(workspace)
        self.settings = DispatchSettings.from_env()  # a bad value stops `nudge serve`, named
        self._content = content
        self.sender: TransactionalSender | None = None

    def routes(self) -> list[Route]:
        return [Route("/v1/send/{channel}", self.send, methods=["POST"])]

    def start(self) -> None:
        """Open the store and settle what a stopped collector left in flight."""
        store = TransactionalStore(store_path(self.workspace.warehouse_path))
        store.reconcile(utc_now())
        self.sender = TransactionalSender(
            store,
            content=self.content,
            providers=self.providers,
            suppressed_ids=self.suppressions.current,
            settings=self.settings,
        )

    def close(self) -> None:
        self.providers.close()
        if self.sender is not None:
            self.sender.store.close()

    def content(self) -> Content:
        """The workspace's templates as the content folder holds them now (``WatchedContent``)."""
        return self._content.current()

    def _scope(self, request: Request) -> str:
        """A hash of the request's App API key: idempotency keys are per credential."""
        if not self.app_keys:
            raise Refused(
                403, "this collector takes no transactional sends: NUDGE_APP_API_KEYS is not set"
            )
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Refused(401, "missing credentials: use Authorization: Bearer <App API key>")
        key = key.strip()
        if not any(secrets.compare_digest(key.encode(), k.encode()) for k in self.app_keys):
            raise Refused(401, "unknown App API key")
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    async def send(self, request: Request) -> Response:
        scope = self._scope(request)
        channel = request.path_params["channel"]
        if channel not in CHANNELS:
            raise Refused(
                404, f"unknown channel {channel!r}; expected one of {', '.join(CHANNELS)}"
            )
        key = _idempotency_key(request)
        body = await read_json(
            request, limit=self.limits.batch_bytes, timeout=self.limits.body_seconds
        )
        send_request = parse_request(channel, body, scope=scope, idempotency_key=key)
        assert self.sender is not None, "the collector's lifespan starts the sender"
        try:
            try:
                answer = await asyncio.to_thread(self.sender.send, send_request)
            except InProgress as busy:
                answer = await self._answer_of(busy.delivery_id, send_request)
        except Refusal as refusal:
            raise Refused(refusal.status, refusal.reason) from None
        return JSONResponse(answer.body, status_code=answer.status)

    async def _answer_of(self, delivery_id: str, send_request: SendRequest) -> Answer:
        """Wait (without holding a thread) for the answer of the request that holds the key."""
        assert self.sender is not None
        deadline = time.monotonic() + IN_PROGRESS_WAIT_SECONDS
        while time.monotonic() < deadline:
            answer = await asyncio.to_thread(self.sender.settled, delivery_id, send_request)
            if answer is not None:
                return answer
            await asyncio.sleep(0.02)
        raise Refusal(
            409, "a request with this Idempotency-Key is still being sent; retry in a moment"
        )
