"""Reading a request: credentials, content type, size, gzip, time, JSON.

Every way a request can be unreadable ends in ``Refused`` with the HTTP status and a sentence
for the sender; nothing here raises anything else for any input.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import zlib
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request


class Refused(Exception):
    """A request answered with ``status`` and ``reason``, nothing landed."""

    def __init__(self, status: int, reason: str, *, body: bytes | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.body = body  # kept in quarantine when the body was read but is not JSON


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """The user name and password of an HTTP Basic ``Authorization`` header, if any."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        raise Refused(401, "the Authorization header must use HTTP Basic authentication")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise Refused(401, "the Authorization header is not valid HTTP Basic") from None
    user, _, password = decoded.partition(":")
    return user, password


def _check_content_type(request: Request) -> None:
    content_type = request.headers.get("content-type")
    if content_type is None:
        return
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type not in ("application/json", "text/plain", ""):
        raise Refused(
            415, f"the body must be JSON (Content-Type application/json), not {media_type}"
        )


async def _raw_body(request: Request, limit: int, timeout: float) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise Refused(413, f"the body is {length} bytes, over the limit of {limit}")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise Refused(413, f"the body is over the limit of {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise Refused(408, f"the body did not arrive within {timeout:g} seconds") from None
    except ClientDisconnect:
        raise Refused(400, "the client closed the connection before the body ended") from None
    return b"".join(chunks)


def _gunzip(data: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits=47)  # gzip or zlib header, detected
    try:
        body = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise Refused(400, f"the body is not valid gzip: {exc}") from None
    if len(body) > limit or inflater.unconsumed_tail:
        raise Refused(413, f"the body is over the limit of {limit} bytes once decompressed")
    if not inflater.eof:
        raise Refused(400, "the gzip body is truncated")
    return body


async def read_json(request: Request, *, limit: int, timeout: float) -> Any:
    """The request's JSON body (``None`` when it is empty), within ``limit`` bytes (also once
    decompressed) and ``timeout`` seconds."""
    _check_content_type(request)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", ""):
        raise Refused(415, f"Content-Encoding {encoding} is not supported (gzip is)")
    body = await _raw_body(request, limit, timeout)
    if encoding == "gzip" and body:
        body = _gunzip(body, limit)
    if not body.strip():
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        problem = str(exc)
    try:  # what orjson refuses but JSON allows: integers beyond 64 bits
        return json.loads(body.decode())
    except (ValueError, RecursionError):
        raise Refused(400, f"the body is not JSON: {problem}", body=body) from None
