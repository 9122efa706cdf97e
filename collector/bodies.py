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
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

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
    return parse_basic(request.headers.get("authorization"))


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """The user name and password of an ``Authorization`` header's value (``None``: no header)."""
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


def _check_content_type(content_type: str | None) -> None:
    if content_type is None:
        return
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type not in ("application/json", "text/plain", ""):
        raise Refused(
            415, f"the body must be JSON (Content-Type application/json), not {media_type}"
        )


async def _raw_body(
    length: str | None, chunks: AsyncIterator[bytes], limit: int, timeout: float
) -> bytes:
    if length is not None and length.isdigit() and int(length) > limit:
        raise Refused(413, f"the body is {length} bytes, over the limit of {limit}")
    parts: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise Refused(413, f"the body is over the limit of {limit} bytes")
                parts.append(chunk)
    except TimeoutError:
        raise Refused(408, f"the body did not arrive within {timeout:g} seconds") from None
    except ClientDisconnect:
        raise Refused(400, "the client closed the connection before the body ended") from None
    return b"".join(parts)


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
    headers = request.headers
    return await read_json_parts(
        BodyHeaders(
            headers.get("content-type"),
            headers.get("content-encoding"),
            headers.get("content-length"),
        ),
        request.stream(),
        limit=limit,
        timeout=timeout,
    )


class BodyHeaders(NamedTuple):
    """The headers that say how to read a body, as sent (``None`` when absent)."""

    content_type: str | None
    content_encoding: str | None
    content_length: str | None


async def read_json_parts(
    headers: BodyHeaders, chunks: AsyncIterator[bytes], *, limit: int, timeout: float
) -> Any:
    """``read_json`` from a body's headers and its chunks as they arrive."""
    _check_content_type(headers.content_type)
    encoding = (headers.content_encoding or "identity").strip().lower()
    if encoding not in ("identity", "gzip", ""):
        raise Refused(415, f"Content-Encoding {encoding} is not supported (gzip is)")
    body = await _raw_body(headers.content_length, chunks, limit, timeout)
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
