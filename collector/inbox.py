"""The in-app inbox served over HTTP (docs/inbox.md).

The in_app sender writes each person's messages into ``InboxStore`` (a SQLite file in WAL mode,
``senders.channels.in_app``), never into the warehouse, so the inbox answers while a run holds
the DuckDB file. Two doors lead to the same four operations (list, mark one read, mark all read,
dismiss one):

- ``/api/v1/customers/{identifier}/inbox...``, behind the Track API credentials, for the
  customer's own servers;
- ``/inbox/{user_id}/messages...``, for browsers: the request carries the person's hash, the hex
  HMAC-SHA256 of the user id keyed with ``NUDGE_INBOX_SECRET``, which the customer's server
  computes and hands to its page (identity verification as Intercom and Customer.io do it). The
  origins in ``NUDGE_INBOX_ORIGINS`` may call it across origins (CORS). ``GET /inbox/{user_id}``
  is a small page listing the messages, to embed or link to.

Reading and dismissing are data like any other: a track event (``Inbox Message Read``, ``Inbox
Message Dismissed``, ``properties.delivery_id``) is landed through the collector's intake before
the store changes. Its message id is derived from the delivery id, so repeating the call lands
nothing new once the warehouse has deduplicated it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.templating import Jinja2Templates

from collector import customerio
from collector.bodies import Refused
from collector.commit import CommitFailed
from collector.intake import Intaker
from collector.settings import InboxSettings
from nudge.core.landing.messages import InvalidMessage
from nudge.core.workspace import Workspace
from senders.channels.in_app import InboxMessage, InboxStore, UnknownMessage

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
HASH_HEADER = "X-Nudge-User-Hash"
HASH_PARAMETER = "user_hash"
READ_EVENT = "Inbox Message Read"
DISMISSED_EVENT = "Inbox Message Dismissed"
_MESSAGE_ID_PREFIX = {READ_EVENT: "inbox-read-", DISMISSED_EVENT: "inbox-dismissed-"}
DEFAULT_LIMIT, MAX_LIMIT = 20, 100

Operation = Callable[[Request, str], Awaitable[dict[str, Any]]]


def user_hash(secret: bytes, user_id: str) -> str:
    """The hash a browser shows for ``user_id``: hex HMAC-SHA256 of the id (UTF-8)."""
    return hmac.new(secret, user_id.encode(), hashlib.sha256).hexdigest()


def _given_hash(request: Request) -> str | None:
    return request.headers.get(HASH_HEADER) or request.query_params.get(HASH_PARAMETER)


def _message(message: InboxMessage) -> dict[str, Any]:
    return {
        "delivery_id": message.delivery_id,
        "content": message.content,
        "created_at": message.created_at,
        "read_at": message.read_at,
        "dismissed_at": message.dismissed_at,
    }


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise Refused(400, f"limit must be a whole number from 1 to {MAX_LIMIT}, not {text!r}")
    return int(text)


def _flag(name: str, text: str | None) -> bool:
    if text is None:
        return False
    if text.lower() not in ("true", "false", "1", "0"):
        raise Refused(400, f"{name} must be true or false, not {text!r}")
    return text.lower() in ("true", "1")


def _event(name: str, user_id: str, delivery_id: str, now: datetime) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": user_id,
        "event": name,
        "messageId": _MESSAGE_ID_PREFIX[name] + delivery_id,
        "timestamp": now.isoformat(),
        "properties": {"delivery_id": delivery_id},
        "context": {"nudge": {"source": "inbox"}},
    }


class Inbox:
    """The inbox endpoints of one workspace; ``track_auth`` checks the Track API credentials
    (raising ``Refused``), ``intaker`` lands the read and dismiss events."""

    def __init__(
        self,
        workspace: Workspace,
        settings: InboxSettings,
        intaker: Intaker,
        track_auth: Callable[[Request], None],
    ) -> None:
        self.store = InboxStore(workspace.inbox_path)
        self.settings = settings
        self.intaker = intaker
        self.track_auth = track_auth

    def routes(self) -> list[BaseRoute]:
        operations: list[tuple[str, str, Operation]] = [
            ("", "GET", self.list_messages),
            ("/read", "POST", self.read_all),
            ("/{delivery_id}/read", "POST", self.read),
            ("/{delivery_id}/dismiss", "POST", self.dismiss),
        ]
        customer = "/api/v1/customers/{identifier}/inbox"
        server: list[BaseRoute] = [
            Route(customer + path, self._server(op), methods=[method])
            for path, method, op in operations
        ]
        browser = [
            Route("/{user_id}", self.page, methods=["GET"]),
            *(
                Route("/{user_id}/messages" + path, self._browser(op), methods=[method])
                for path, method, op in operations
            ),
        ]
        cors = Middleware(
            CORSMiddleware,
            allow_origins=self.settings.origins,
            allow_methods=["GET", "POST"],
            allow_headers=[HASH_HEADER],
            max_age=600,
        )
        return [*server, Mount("/inbox", routes=browser, middleware=[cors])]

    # the two doors ------------------------------------------------------------------------------

    def _server(self, operation: Operation) -> Callable[[Request], Awaitable[Response]]:
        """Behind the Track API credentials; refusals go to the collector's handler."""

        async def endpoint(request: Request) -> Response:
            self.track_auth(request)
            try:
                user_id = customerio.person(request.path_params["identifier"]).user_id
            except InvalidMessage as exc:
                raise Refused(400, exc.reason) from None
            return JSONResponse(await operation(request, user_id))

        return endpoint

    def _browser(self, operation: Operation) -> Callable[[Request], Awaitable[Response]]:
        """For the person's own browser; refusals are answered here, inside the CORS layer, so
        that a page of another origin can read why."""

        async def endpoint(request: Request) -> Response:
            try:
                user_id = self._verified(request)
                return JSONResponse(await operation(request, user_id))
            except Refused as refused:
                return JSONResponse({"error": refused.reason}, status_code=refused.status)
            except CommitFailed as failed:
                headers = {"Retry-After": "5"}
                return JSONResponse({"error": str(failed)}, status_code=503, headers=headers)

        return endpoint

    def _verified(self, request: Request) -> str:
        """The path's user id, once the request's hash proves it (constant-time comparison)."""
        if self.settings.secret is None:
            raise Refused(
                403, "this collector serves no browser inbox: NUDGE_INBOX_SECRET is not set"
            )
        user_id: str = request.path_params["user_id"]
        given = _given_hash(request)
        if not given:
            raise Refused(
                401,
                f"missing user hash: send the {HASH_HEADER} header or the {HASH_PARAMETER} "
                "parameter (hex HMAC-SHA256 of the user id, keyed with the inbox secret)",
            )
        expected = user_hash(self.settings.secret, user_id)
        if not hmac.compare_digest(given.strip().lower().encode(), expected.encode()):
            raise Refused(401, f"the user hash does not match user {user_id!r}")
        return user_id

    # the operations ---------------------------------------------------------------------------

    async def list_messages(self, request: Request, user_id: str) -> dict[str, Any]:
        """Newest first; ``limit`` (default 20, at most 100), ``before`` (the ``next`` of the
        previous page), ``include_dismissed``."""
        query = request.query_params
        limit = _limit(query.get("limit"))
        dismissed = _flag("include_dismissed", query.get("include_dismissed"))
        before = query.get("before")
        try:
            page = await asyncio.to_thread(
                self.store.messages,
                user_id,
                include_dismissed=dismissed,
                limit=limit + 1,
                before=before,
            )
        except UnknownMessage:
            raise Refused(
                400, f"before: {user_id!r} has no message {before!r}; pass the previous page's next"
            ) from None
        unread = await asyncio.to_thread(self.store.unread, user_id)
        shown = page[:limit]
        return {
            "messages": [_message(m) for m in shown],
            "unread": len(unread),
            "next": shown[-1].delivery_id if len(page) > limit else None,
        }

    async def read(self, request: Request, user_id: str) -> dict[str, Any]:
        return await self._stamp(request, user_id, READ_EVENT, self.store.mark_read)

    async def dismiss(self, request: Request, user_id: str) -> dict[str, Any]:
        return await self._stamp(request, user_id, DISMISSED_EVENT, self.store.dismiss)

    async def read_all(self, request: Request, user_id: str) -> dict[str, Any]:
        unread = await asyncio.to_thread(self.store.unread, user_id)
        await self._land(request, READ_EVENT, user_id, unread)
        marked = await asyncio.to_thread(self.store.mark_all_read, user_id, unread)
        return {"read": marked, "unread": len(await asyncio.to_thread(self.store.unread, user_id))}

    async def _stamp(
        self, request: Request, user_id: str, event: str, stamp: Callable[[str, str], bool]
    ) -> dict[str, Any]:
        delivery_id: str = request.path_params["delivery_id"]
        if await asyncio.to_thread(self.store.created_at, user_id, delivery_id) is None:
            raise Refused(404, f"{user_id!r} has no inbox message {delivery_id!r}")
        await self._land(request, event, user_id, [delivery_id])
        await asyncio.to_thread(stamp, user_id, delivery_id)
        unread = await asyncio.to_thread(self.store.unread, user_id)
        return {"delivery_id": delivery_id, "unread": len(unread)}

    async def _land(self, request: Request, event: str, user_id: str, ids: list[str]) -> None:
        """The events, durable before the store changes: a failure leaves both to a retry."""
        now = datetime.now(UTC)
        messages = [(i, _event(event, user_id, d, now)) for i, d in enumerate(ids)]
        await self.intaker.take(f"{request.method} {request.url.path}", messages)

    # the page ---------------------------------------------------------------------------------

    async def page(self, request: Request) -> Response:
        try:
            user_id = self._verified(request)
        except Refused as refused:
            return TEMPLATES.TemplateResponse(
                request, "inbox_refused.html", {"reason": refused.reason}, refused.status
            )
        # Relative to the page (/inbox/{user_id}), so it also works behind a path prefix.
        config = {"messages": f"{quote(user_id, safe='')}/messages", "hash": _given_hash(request)}
        return TEMPLATES.TemplateResponse(request, "inbox.html", {"config": config})
