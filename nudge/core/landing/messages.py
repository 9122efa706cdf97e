"""Validate one Segment-spec message and turn it into a landing row.

The landing columns are listed in docs/architecture.md ("Landing"). Validation is strict and
says exactly what is wrong, because silent drops are what users of other tools complain about
most. Keys this module does not know are ignored, as Segment does.
"""

from __future__ import annotations

import hashlib
import math
import sys
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from enum import Enum
from typing import Any
from uuid import UUID

import orjson

from nudge.core.clock import to_utc_naive

MAX_MESSAGE_BYTES = 32 * 1024
# A Customer.io Track API message: Customer.io's 100 KB of event data, plus Segment's 32 KB for
# the rest.
MAX_TRACK_MESSAGE_BYTES = 100 * 1024 + MAX_MESSAGE_BYTES
# The APIs a message can come from, and the size limit of one message from each.
SEGMENT_API = "segment"
CUSTOMERIO_API = "customerio"
MESSAGE_LIMITS = {SEGMENT_API: MAX_MESSAGE_BYTES, CUSTOMERIO_API: MAX_TRACK_MESSAGE_BYTES}
MAX_ID_BYTES = 150
# Unix timestamps from here on are milliseconds (1e11 seconds is in the year 5138).
MILLISECONDS_FROM = 100_000_000_000
MESSAGE_TYPES = frozenset({"identify", "track", "page", "screen", "group", "alias", "delete"})
PROPERTY_TYPES = frozenset({"track", "page", "screen"})
TRAIT_TYPES = frozenset({"identify", "group"})

LANDING_COLUMNS = (
    "message_id",
    "type",
    "user_id",
    "anonymous_id",
    "previous_id",
    "group_id",
    "event",
    "name",
    "timestamp",
    "received_at",
    "properties",
    "traits",
    "context",
)


class InvalidMessage(ValueError):
    """A message that cannot be landed; ``reason`` says why in words a sender can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_CANONICAL_OPTIONS = (
    orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
)

# orjson writes at most 254 nested objects and arrays; the landing limit is the same, so a message
# is refused or accepted alike whichever way ``canonical_json`` writes it.
MAX_NESTING = 254
_INT64_MIN, _UINT64_MAX = -(2**63), 2**64 - 1
# The key types orjson writes as text with OPT_NON_STR_KEYS.
_KEY_TYPES = (str, int, float, bool, type(None), date, time, Enum, UUID)


def nested_too_deep() -> InvalidMessage:
    return InvalidMessage(f"message is nested more than {MAX_NESTING} levels deep (the limit)")


def integer_too_long() -> InvalidMessage:
    return InvalidMessage(
        f"message holds an integer of more than {sys.get_int_max_str_digits()} digits"
    )


def canonical_json(value: Any) -> str:
    """Stable JSON text: sorted keys, no spaces, non-ASCII text as is; values JSON has no type
    for (datetimes, decimals) as ``str()``, NaN and infinities as null.

    orjson writes it: encoding each message and its parts was over half of landing's time with
    the standard library. What orjson refuses is checked and rewritten by ``_encodable`` and
    written by orjson again: integers beyond 64 bits (which JSON allows) as their digits;
    nesting deeper than ``MAX_NESTING``, text with a lone surrogate (which no UTF-8 file can
    hold) and integers Python will not print are rejected with ``InvalidMessage``.
    """
    return canonical_bytes(value).decode()


def canonical_bytes(value: Any) -> bytes:
    """``canonical_json`` as the UTF-8 bytes orjson writes (no decoding when only the size or a
    hash of the text is needed)."""
    try:
        return orjson.dumps(value, default=str, option=_CANONICAL_OPTIONS)
    except orjson.JSONEncodeError:
        pass
    try:
        return orjson.dumps(_encodable(value, 1), default=str, option=_CANONICAL_OPTIONS)
    except orjson.JSONEncodeError as exc:
        raise InvalidMessage(f"message cannot be written as JSON: {exc}") from exc


def _encodable(value: Any, depth: int) -> Any:
    """``value`` with integers orjson cannot hold as pre-written digits, after checking the
    nesting and the text (orjson's own containers only: dicts, lists, tuples)."""
    if isinstance(value, str):
        _check_unicode(value)
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        if _INT64_MIN <= value <= _UINT64_MAX:
            return value
        try:
            return orjson.Fragment(str(value))
        except ValueError as exc:
            raise integer_too_long() from exc
    if isinstance(value, dict | list | tuple):
        if depth > MAX_NESTING:
            raise nested_too_deep()
        if isinstance(value, dict):
            return {_checked_key(k): _encodable(v, depth + 1) for k, v in value.items()}
        return [_encodable(item, depth + 1) for item in value]
    return value


def _checked_key(key: Any) -> Any:
    if isinstance(key, str):
        _check_unicode(key)
    elif not isinstance(key, _KEY_TYPES):
        raise InvalidMessage(
            f"message holds an object key of type {type(key).__name__}; keys must be text"
        )
    return key


def _check_unicode(text: str) -> None:
    try:
        text.encode()
    except UnicodeEncodeError as exc:
        raise InvalidMessage(
            f"message holds text that is not valid Unicode ({exc.reason}: "
            f"{text[max(exc.start - 20, 0) : exc.end + 20]!r})"
        ) from exc


def shown(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to about ``limit`` characters, for a reason that quotes a value."""
    try:
        text = repr(value)
    except ValueError:  # an integer too long to print
        return f"an integer of more than {sys.get_int_max_str_digits()} digits"
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def parse_timestamp(value: Any, field: str) -> datetime:
    """ISO 8601 text (any offset, ``Z``; no offset means UTC), unix seconds or unix
    milliseconds -> naive UTC. A number of at least ``MILLISECONDS_FROM`` is taken as
    milliseconds (as seconds it would be after the year 5000; clients send both).

    The UTC value must fall in years 1 to 9999 (what Python's datetime holds): an offset can
    push a timestamp written at either end outside it, e.g. ``0001-01-01T00:00:00+01:00``.
    """
    if isinstance(value, str):  # the common case first (the types below are disjoint from it)
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise InvalidMessage(f"{field} is not an ISO 8601 timestamp: {shown(value)}") from exc
    elif isinstance(value, bool):
        raise InvalidMessage(f"{field} must be an ISO 8601 string or unix seconds, got a boolean")
    elif isinstance(value, int | float):
        if not math.isfinite(value):
            raise InvalidMessage(f"{field} is not a finite number: {shown(value)}")
        try:
            seconds = value / 1000 if abs(value) >= MILLISECONDS_FROM else value
            return to_utc_naive(datetime.fromtimestamp(seconds, UTC))
        except (OverflowError, OSError, ValueError) as exc:
            raise InvalidMessage(
                f"{field} is out of range as unix seconds: {shown(value)}"
            ) from exc
    if isinstance(value, datetime):
        try:
            return to_utc_naive(value)
        except OverflowError as exc:
            raise InvalidMessage(
                f"{field} {value.isoformat()} is outside years 1 to 9999 in UTC"
            ) from exc
    raise InvalidMessage(
        f"{field} must be an ISO 8601 string or unix seconds, got {type(value).__name__}"
    )


def _identifier(msg: Mapping[str, Any], field: str) -> str | None:
    """An id field as text: strings as given, integers converted, empty means absent."""
    value = msg.get(field)
    if value is None:
        return None
    if type(value) is str:  # the common case first: no conversion
        text = value
    elif isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidMessage(f"{field} must be a string, got {type(value).__name__}")
    else:
        text = str(value)
    # A character is at most 4 bytes in UTF-8: only longer text needs encoding to be measured.
    if len(text) > MAX_ID_BYTES // 4 and len(text.encode()) > MAX_ID_BYTES:
        raise InvalidMessage(f"{field} is longer than {MAX_ID_BYTES} bytes")
    return text or None


def _text(msg: Mapping[str, Any], field: str) -> str | None:
    value = msg.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidMessage(f"{field} must be a string, got {type(value).__name__}")
    return value or None


def _object(msg: Mapping[str, Any], field: str) -> Mapping[str, Any] | None:
    value = msg.get(field)
    if value is None or type(value) is dict:  # dict first: isinstance of an ABC is slow
        return value
    if not isinstance(value, Mapping):
        raise InvalidMessage(f"{field} must be a JSON object, got {type(value).__name__}")
    return value


def _traits(msg: Mapping[str, Any], context: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    traits = _object(msg, "traits")
    if traits is None and context is not None:
        fallback = context.get("traits")
        if fallback is not None and not isinstance(fallback, Mapping):
            raise InvalidMessage(
                f"context.traits must be a JSON object, got {type(fallback).__name__}"
            )
        traits = fallback
    return traits


def _encoded(value: Mapping[str, Any] | None) -> str | None:
    return None if value is None else canonical_json(value)


def api_of_source(source: str) -> str:
    """The API a collector request's source (``"<METHOD> <path>"``) belongs to: the Track API's
    paths start with ``/api/``; everything else (Segment's paths, a file) is Segment's."""
    return CUSTOMERIO_API if source.partition(" ")[2].startswith("/api/") else SEGMENT_API


def normalise_message(
    msg: Mapping[str, Any], received_at: datetime, *, max_bytes: int = MAX_MESSAGE_BYTES
) -> dict[str, Any]:
    """Validate a Segment-spec message and return its landing row (see ``LANDING_COLUMNS``).
    ``max_bytes`` is its source's limit on its size as JSON (Segment's 32 KB by default).

    Raises ``InvalidMessage`` naming the first problem found.
    """
    if type(msg) is not dict and not isinstance(msg, Mapping):
        raise InvalidMessage(f"message must be a JSON object, got {type(msg).__name__}")
    text = canonical_bytes(msg)
    size = len(text)
    if size > max_bytes:
        raise InvalidMessage(
            f"message is {size} bytes, over the {max_bytes // 1024} KB limit ({max_bytes})"
        )

    kind = msg.get("type")
    if kind is None or kind == "":
        raise InvalidMessage("missing type")
    if not isinstance(kind, str) or kind not in MESSAGE_TYPES:
        raise InvalidMessage(
            f"unknown type {kind!r} (expected one of {', '.join(sorted(MESSAGE_TYPES))})"
        )

    message_id = _identifier(msg, "messageId")
    user_id = _identifier(msg, "userId")
    anonymous_id = _identifier(msg, "anonymousId")
    previous_id = _identifier(msg, "previousId")
    group_id = _identifier(msg, "groupId")
    event = _text(msg, "event")
    name = _text(msg, "name")
    context = _object(msg, "context")
    properties = _object(msg, "properties")
    traits = _traits(msg, context)

    if kind == "alias":
        if previous_id is None or user_id is None:
            raise InvalidMessage("alias needs both previousId and userId")
    elif kind == "delete":
        if user_id is None:
            raise InvalidMessage("delete needs userId")
    elif user_id is None and anonymous_id is None:
        raise InvalidMessage(f"{kind} needs userId or anonymousId (neither is set)")
    if kind == "track" and event is None:
        raise InvalidMessage("track without event")
    if kind == "group" and group_id is None:
        raise InvalidMessage("group without groupId")

    received = to_utc_naive(received_at)
    timestamp = None
    for field in ("timestamp", "originalTimestamp", "sentAt"):
        if msg.get(field) is not None:
            parsed = parse_timestamp(msg[field], field)
            if timestamp is None and field != "sentAt":
                timestamp = parsed

    return {
        "message_id": message_id or hashlib.sha256(text).hexdigest(),
        "type": kind,
        "user_id": user_id,
        "anonymous_id": anonymous_id,
        "previous_id": previous_id if kind == "alias" else None,
        "group_id": group_id if kind == "group" else None,
        "event": event if kind == "track" else None,
        "name": name if kind in ("page", "screen") else None,
        "timestamp": timestamp or received,
        "received_at": received,
        "properties": _encoded(properties) if kind in PROPERTY_TYPES else None,
        "traits": _encoded(traits) if kind in TRAIT_TYPES else None,
        "context": _encoded(context),
    }
