"""The collector's HTTP application: the Segment and Customer.io Track endpoints.

Every handler authenticates first, reads the body within the limits (``collector.bodies``),
turns it into Segment-spec messages and hands them to the intake, which answers only once the
accepted ones are durable. The answer lists every rejected message and why.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import unquote

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from collector import customerio
from collector.bodies import Refused, basic_credentials, parse_basic, read_json
from collector.commit import CommitFailed, GroupCommitter
from collector.feedback import FeedbackReceiver
from collector.front import SEGMENT_TYPES, IngestFront
from collector.inbox import Inbox
from collector.intake import SUPPRESSION_EVENTS, Intake, Intaker
from collector.openapi import openapi_document
from collector.settings import Credentials, InboxSettings, Limits
from collector.subscription_centre import SubscriptionCentre
from collector.transactional import TransactionalApi
from nudge.core.checked_content import WatchedContent
from nudge.core.clock import utc_now
from nudge.core.landing.messages import InvalidMessage
from nudge.core.landing.quarantine import keep, quarantine_record
from nudge.core.landing.quarantine import max_bytes_from_env as quarantine_max_bytes_from_env
from nudge.core.landing.suppressions import SuppressionList, suppression_key
from nudge.core.workspace import Workspace

_REALM = {"WWW-Authenticate": 'Basic realm="nudge"'}
_BEARER = {"WWW-Authenticate": 'Bearer realm="nudge"'}
_MICROSECOND = timedelta(microseconds=1)


CUSTOMERS = "/api/v1/customers/"
# Authorization header values remembered as accepted (``Collector._segment_auth``); bounded so
# that clients varying the password part cannot grow it.
ACCEPTED_HEADERS = 64


class EncodedCustomerIds:
    """Route the Track API's customer paths on the path as sent: an identifier holding ``/``
    (sent as ``%2F``, as Customer.io's clients do) then stays one path segment instead of
    reaching no route. The handlers decode the identifier and device token (``_param``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(CUSTOMERS):
            raw = scope.get("raw_path")
            if raw and raw.startswith(CUSTOMERS.encode()):
                scope = {**scope, "path": raw.decode("utf-8", "replace")}
        await self.app(scope, receive, send)


class JSONAnswer(JSONResponse):
    """A JSON answer written by orjson: the standard library's encoder, which Starlette's
    ``JSONResponse`` uses, was a measurable part of a single-event request's time."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _stamped(message: dict[str, Any], received: datetime) -> dict[str, Any]:
    """A Track API message with its arrival time as its timestamp when it carries none.

    Its message id, when it has none, is the hash of its text: without the time, two calls that
    say the same thing (a second suppression after an unsuppression, an identify setting a trait
    back) would be one message, and the warehouse would keep only the first."""
    if message.get("timestamp") is None:
        message["timestamp"] = received.isoformat() + "Z"
    return message


def _param(request: Request, name: str) -> str:
    """A customer path's parameter, decoded (see ``EncodedCustomerIds``)."""
    return unquote(request.path_params[name])


def _known(given: str, allowed: frozenset[str]) -> bool:
    """Whether ``given`` is one of ``allowed``, comparing in constant time."""
    return any(secrets.compare_digest(given.encode(), key.encode()) for key in allowed)


class Collector:
    """The endpoints, over one workspace's landing area."""

    def __init__(self, workspace: Workspace, credentials: Credentials, limits: Limits) -> None:
        self.workspace = workspace
        self.credentials = credentials
        self.limits = limits
        self.committer = GroupCommitter(workspace.events_landing_dir)
        # Only collectors change the list, one per workspace: this one sees its own changes at
        # once, so the file need not be looked at on every request.
        self.suppressions = SuppressionList(workspace.suppressions_path, recheck_seconds=0.1)
        self.intaker = Intaker(self.committer, self.suppressions, workspace.quarantine_dir)
        # The templates and topics, read again after an edit (the transactional API and the
        # subscription centre share them).
        self.content = WatchedContent(workspace)
        self.transactional = TransactionalApi(
            workspace, credentials.app_keys, limits, self.suppressions, self.content
        )
        self._accepted_headers: set[str] = set()  # see _segment_auth

    # authentication -------------------------------------------------------------------------

    def _segment_auth(self, authorization: str | None) -> None:
        """Check the ``Authorization`` header's value for a known write key.

        A header value that passed the check is remembered (up to ``ACCEPTED_HEADERS`` of
        them): a client sends the same one on every request, and decoding and comparing it
        again was a few microseconds of each single-event request. The set is looked up by
        the value's hash (keyed per process), so the lookup says nothing about the keys.
        """
        if authorization is not None and authorization in self._accepted_headers:
            return
        if not self.credentials.write_keys:
            raise Refused(403, "this collector takes no Segment data: NUDGE_WRITE_KEYS is not set")
        given = parse_basic(authorization)
        if given is None:
            raise Refused(401, "missing credentials: use HTTP Basic with a write key as user name")
        if not _known(given[0], self.credentials.write_keys):
            raise Refused(401, "unknown write key")
        if authorization is not None and len(self._accepted_headers) < ACCEPTED_HEADERS:
            self._accepted_headers.add(authorization)

    def _track_auth(self, request: Request) -> None:
        if not self.credentials.track:
            raise Refused(
                403, "this collector takes no Track API data: NUDGE_TRACK_CREDENTIALS is not set"
            )
        given = basic_credentials(request)
        if given is None:
            raise Refused(401, "missing credentials: use HTTP Basic with site_id:api_key")
        pairs = {f"{site}:{key}" for site, key in self.credentials.track}
        if not _known(f"{given[0]}:{given[1]}", frozenset(pairs)):
            raise Refused(401, "unknown site_id or api_key")

    async def _body(self, request: Request) -> Any:
        limits = self.limits
        return await read_json(request, limit=limits.batch_bytes, timeout=limits.body_seconds)

    # Segment ---------------------------------------------------------------------------------

    async def segment_batch(self, request: Request) -> Response:
        return await self.take_batch(
            _source(request), request.headers.get("authorization"), partial(self._body, request)
        )

    async def segment_single(self, request: Request) -> Response:
        kind = request.scope["path"].rsplit("/", 1)[-1]
        return await self.take_single(
            _source(request),
            kind,
            request.headers.get("authorization"),
            partial(self._body, request),
        )

    async def take_batch(
        self, source: str, authorization: str | None, read: Callable[[], Awaitable[Any]]
    ) -> JSONAnswer:
        """``POST /v1/batch``: ``read`` reads the body, once the credentials are checked."""
        self._segment_auth(authorization)
        body = await read()
        if not isinstance(body, dict) or not isinstance(body.get("batch"), list):
            await self._keep(source, body, "the body must be a JSON object with a batch array")
            raise Refused(400, "the body must be a JSON object with a batch array")
        shared = {k: body[k] for k in ("context", "integrations", "sentAt") if k in body}
        batch = body["batch"]
        if shared:
            batch = [{**shared, **m} if isinstance(m, dict) else m for m in batch]
        messages = list(enumerate(batch))
        intake = await self.intaker.take(source, messages, max_bytes=self.limits.message_bytes)
        return _segment_answer(intake)

    async def take_single(
        self,
        source: str,
        kind: str,
        authorization: str | None,
        read: Callable[[], Awaitable[Any]],
    ) -> JSONAnswer:
        """``POST /v1/<kind>``: one message of that type (see ``take_batch``)."""
        self._segment_auth(authorization)
        body = await read()
        failures: list[tuple[int, Any, str]] = []
        messages: list[tuple[int, Any]] = []
        if not isinstance(body, dict):
            failures.append((0, body, "the body must be a JSON object (one message)"))
        elif body.get("type", kind) != kind:
            failures.append((0, body, f"type {body['type']!r} sent to /v1/{kind}"))
        else:
            messages.append((0, {**body, "type": kind}))
        intake = await self.intaker.take(
            source, messages, failures=failures, max_bytes=self.limits.message_bytes
        )
        return _segment_answer(intake)

    # Customer.io Track API ------------------------------------------------------------------

    async def _track_call(
        self,
        request: Request,
        build: Callable[[Any], dict[str, Any]],
    ) -> Intake:
        self._track_auth(request)
        body = await self._body(request)
        limit = self.limits.track_message_bytes
        try:
            message = _stamped(build(body), utc_now())
        except InvalidMessage as exc:
            failures = [(0, body, exc.reason)]
            return await self.intaker.take(_source(request), [], failures=failures)
        return await self.intaker.take(_source(request), [(0, message)], max_bytes=limit)

    async def identify(self, request: Request) -> Response:
        identifier = _param(request, "identifier")
        return _track_answer(
            await self._track_call(request, lambda b: customerio.identify(identifier, b))
        )

    async def delete(self, request: Request) -> Response:
        identifier = _param(request, "identifier")
        intake = await self._track_call(request, lambda _: customerio.delete(identifier))
        return _track_answer(intake)

    async def event(self, request: Request) -> Response:
        identifier = _param(request, "identifier")
        intake = await self._track_call(request, lambda b: customerio.event(identifier, b))
        return _track_answer(intake)

    async def anonymous_event(self, request: Request) -> Response:
        return _track_answer(await self._track_call(request, customerio.anonymous_event))

    async def device(self, request: Request) -> Response:
        identifier = _param(request, "identifier")
        intake = await self._track_call(request, lambda b: customerio.device(identifier, b))
        return _track_answer(intake)

    async def device_deleted(self, request: Request) -> Response:
        identifier, token = _param(request, "identifier"), _param(request, "token")
        intake = await self._track_call(
            request, lambda _: customerio.device_deleted(identifier, token)
        )
        return _track_answer(intake)

    async def suppress(self, request: Request) -> Response:
        identifier = _param(request, "identifier")
        intake = await self._track_call(request, lambda _: customerio.suppression(identifier, True))
        if intake.accepted:  # the event is durable first: a retry after a crash suppresses
            user_id = customerio.person(identifier).user_id
            await asyncio.to_thread(self.suppressions.add, [user_id])
        return _track_answer(intake)

    async def unsuppress(self, request: Request) -> Response:
        identifier = _param(request, "identifier")
        self._track_auth(request)
        try:
            user_id = customerio.person(identifier).user_id
        except InvalidMessage as exc:
            raise Refused(400, exc.reason) from None
        await asyncio.to_thread(self.suppressions.remove, [user_id])
        intake = await self._track_call(
            request, lambda _: customerio.suppression(identifier, False)
        )
        return _track_answer(intake)

    async def merge(self, request: Request) -> Response:
        return _track_answer(await self._track_call(request, customerio.merge))

    async def v2_batch(self, request: Request) -> Response:
        """``POST /api/v2/batch``: person operations; a bad one rejects only itself."""
        self._track_auth(request)
        body = await self._body(request)
        if not isinstance(body, dict) or not isinstance(body.get("batch"), list):
            await self._keep(
                _source(request), body, "the body must be a JSON object with a batch array"
            )
            raise Refused(400, "the body must be a JSON object with a batch array")
        messages: list[tuple[int, Any]] = []
        failures: list[tuple[int, Any, str]] = []
        received = utc_now()
        for index, operation in enumerate(body["batch"]):
            try:
                message = customerio.v2_operation(operation)
            except InvalidMessage as exc:
                failures.append((index, operation, exc.reason))
                continue
            # A microsecond apart in batch order: the warehouse orders the operations as the
            # batch does (a suppression and an unsuppression of one person, two identifies).
            messages.append((index, _stamped(message, received + index * _MICROSECOND)))
        # Each person's last suppression or unsuppression in the batch is what holds after it.
        last: dict[str, tuple[int, dict[str, Any]]] = {}
        for index, message in messages:
            if message.get("event") in SUPPRESSION_EVENTS:
                last[suppression_key(message["userId"])] = (index, message)
        freed = [
            m["userId"] for _, m in last.values() if m["event"] == customerio.USER_UNSUPPRESSED
        ]
        if freed:
            await asyncio.to_thread(self.suppressions.remove, freed)
        intake = await self.intaker.take(
            _source(request), messages, failures=failures, max_bytes=self.limits.track_message_bytes
        )
        refused = {r.index for r in intake.rejected}
        suppressed = [
            m["userId"]
            for i, m in last.values()
            if m["event"] == customerio.USER_SUPPRESSED and i not in refused
        ]
        if suppressed:
            await asyncio.to_thread(self.suppressions.add, suppressed)
        return _segment_answer(intake)

    # the rest --------------------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        return JSONAnswer({"status": "ok", "flushes": self.committer.flushes})

    async def openapi(self, request: Request) -> Response:
        return JSONAnswer(openapi_document())

    async def _keep(self, source: str, body: Any, reason: str) -> None:
        record = quarantine_record(source, None, reason, body)
        await asyncio.to_thread(keep, self.workspace.quarantine_dir, [record])

    async def refused(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        return await self.refusal(_source(request), request.url.path, exc)

    async def refusal(self, source: str, path: str, exc: Refused) -> JSONAnswer:
        """The answer to a refused request to ``path`` (its body, if any, is quarantined)."""
        if exc.body is not None:
            await self._keep(source, exc.body, exc.reason)
        headers = None
        if exc.status == 401:
            headers = _BEARER if path.startswith("/v1/send/") else _REALM
        return _error(path, exc.status, exc.reason, headers)

    async def commit_failed(self, request: Request, exc: Exception) -> Response:
        return self.commit_failure(request.url.path, exc)

    def commit_failure(self, path: str, exc: Exception) -> JSONAnswer:
        """503: the rows were not made durable, so nothing was acknowledged."""
        return _error(path, 503, str(exc), {"Retry-After": "5"})

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        await self.committer.start()
        self.transactional.start()
        try:
            yield
        finally:
            self.transactional.close()
            await self.committer.stop()


def _source(request: Request) -> str:
    # The path as routed; ``request.url`` would build and parse a whole URL per request.
    return f"{request.method} {request.scope['path']}"


def _error(path: str, status: int, reason: str, headers: dict[str, str] | None) -> JSONAnswer:
    if path.startswith(("/api/", "/v1/send/")):  # Customer.io's error shape
        body: dict[str, Any] = {"meta": {"error": reason}}
    else:
        body = {"success": False, "error": reason}
    return JSONAnswer(body, status_code=status, headers=headers)


def _counts(intake: Intake) -> dict[str, Any]:
    return {
        "accepted": intake.accepted,
        "suppressed": intake.suppressed,
        "rejected": [r.answer() for r in intake.rejected],
    }


def _segment_answer(intake: Intake) -> JSONAnswer:
    """200 when anything was kept (or there was nothing to keep), 400 when all was refused."""
    if not intake.rejected or intake.accepted or intake.suppressed:
        return JSONAnswer({"success": True, **_counts(intake)})
    rejected = intake.rejected
    error = rejected[0].reason if len(rejected) == 1 else f"all {len(rejected)} messages rejected"
    return JSONAnswer({"success": False, "error": error, **_counts(intake)}, status_code=400)


def _track_answer(intake: Intake) -> JSONAnswer:
    if intake.rejected:
        reason = intake.rejected[0].reason
        return JSONAnswer({"meta": {"error": reason}, **_counts(intake)}, status_code=400)
    return JSONAnswer(_counts(intake))


def create_app(
    workspace: Workspace, credentials: Credentials | None = None, limits: Limits | None = None
) -> Starlette:
    """The collector over ``workspace`` (credentials and limits from the environment by
    default), with the subscription centre's pages (docs/subscription-centre.md), the
    providers' delivery callbacks (docs/delivery-feedback.md) and the in-app inbox
    (docs/inbox.md)."""
    c = Collector(workspace, credentials or Credentials.from_env(), limits or Limits.from_env())
    customer = CUSTOMERS + "{identifier}"
    routes = [
        Route("/health", c.health, methods=["GET"]),
        Route("/openapi.json", c.openapi, methods=["GET"]),
        Route("/v1/batch", c.segment_batch, methods=["POST"]),
        *(Route(f"/v1/{kind}", c.segment_single, methods=["POST"]) for kind in SEGMENT_TYPES),
        Route(customer, c.identify, methods=["PUT"]),
        Route(customer, c.delete, methods=["DELETE"]),
        Route(f"{customer}/events", c.event, methods=["POST"]),
        Route("/api/v1/events", c.anonymous_event, methods=["POST"]),
        Route(f"{customer}/devices", c.device, methods=["PUT"]),
        Route(f"{customer}/devices/{{token}}", c.device_deleted, methods=["DELETE"]),
        Route(f"{customer}/suppress", c.suppress, methods=["POST"]),
        Route(f"{customer}/unsuppress", c.unsuppress, methods=["POST"]),
        Route("/api/v1/merge_customers", c.merge, methods=["POST"]),
        Route("/api/v2/batch", c.v2_batch, methods=["POST"]),
        *c.transactional.routes(),
    ]
    centre = SubscriptionCentre(workspace, c.content)
    centre.topics  # noqa: B018 - check the content now, not at the first request
    quarantine_max_bytes_from_env()  # a wrong setting is said at start, not at a bad request
    routes += centre.routes() + FeedbackReceiver(workspace).routes()
    routes += Inbox(workspace, InboxSettings.from_env(), c.intaker, c._track_auth).routes()
    app = Starlette(
        routes=routes,
        middleware=[Middleware(IngestFront, collector=c), Middleware(EncodedCustomerIds)],
        lifespan=c.lifespan,
        exception_handlers={Refused: c.refused, CommitFailed: c.commit_failed},
    )
    app.state.collector = c
    return app
