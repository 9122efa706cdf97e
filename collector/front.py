"""The Segment ingest endpoints served ahead of Starlette's routing.

``POST /v1/batch`` and ``POST /v1/<type>`` carry nearly all of a collector's traffic. Starlette's
exception middleware, router (a regular expression per route tried in turn), ``Request`` and
its header and body wrappers cost about as much CPU per single-event request as parsing and
landing the event. ``IngestFront`` sits in the middleware stack before them: it answers those
requests from the ASGI scope directly, through the same ``Collector`` methods as the Starlette
routes (credentials, content types, gzip, size and time limits, quarantine, suppression, the
group commit), with the same answers. Everything else, and these paths under another method
or a ``root_path``, goes on to Starlette; an unexpected error still reaches Starlette's
server-error middleware, which is outside this one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from collector.bodies import BodyHeaders, Refused, read_json_parts
from collector.commit import CommitFailed

if TYPE_CHECKING:
    from collector.app import Collector

SEGMENT_TYPES = ("identify", "track", "page", "screen", "group", "alias")


async def _chunks(receive: Receive) -> AsyncIterator[bytes]:
    """A request's body as it arrives, as Starlette's ``Request.stream`` reads it."""
    while True:
        message = await receive()
        if message["type"] == "http.request":
            body = message.get("body", b"")
            if body:
                yield body
            if not message.get("more_body", False):
                return
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()


class IngestFront:
    """ASGI middleware answering the Segment ingest endpoints itself (see the module)."""

    def __init__(self, app: ASGIApp, collector: Collector) -> None:
        self.app = app
        self.collector = collector
        # path -> (the quarantine source, the message type; None for the batch)
        self.routes: dict[str, tuple[str, str | None]] = {"/v1/batch": ("POST /v1/batch", None)}
        for kind in SEGMENT_TYPES:
            self.routes[f"/v1/{kind}"] = (f"POST /v1/{kind}", kind)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            route = self.routes.get(scope["path"])
            if route is not None:
                answer = await self._ingest(scope["path"], route, scope, receive)
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _ingest(
        self, path: str, route: tuple[str, str | None], scope: Scope, receive: Receive
    ) -> Any:
        collector = self.collector
        source, kind = route
        authorization = content_type = content_encoding = content_length = None
        # The first of each header, as Starlette's ``Headers.get`` (names arrive lower case).
        for name, value in scope["headers"]:
            if name == b"authorization":
                if authorization is None:
                    authorization = value.decode("latin-1")
            elif name == b"content-type":
                if content_type is None:
                    content_type = value.decode("latin-1")
            elif name == b"content-encoding":
                if content_encoding is None:
                    content_encoding = value.decode("latin-1")
            elif name == b"content-length" and content_length is None:
                content_length = value.decode("latin-1")
        headers = BodyHeaders(content_type, content_encoding, content_length)
        limits = collector.limits

        async def read() -> Any:
            return await read_json_parts(
                headers, _chunks(receive), limit=limits.batch_bytes, timeout=limits.body_seconds
            )

        try:
            if kind is None:
                return await collector.take_batch(source, authorization, read)
            return await collector.take_single(source, kind, authorization, read)
        except Refused as exc:
            return await collector.refusal(source, path, exc)
        except CommitFailed as exc:
            return collector.commit_failure(path, exc)
