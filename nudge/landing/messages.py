"""Validate one Segment-spec message and turn it into a landing row.

The landing columns are listed in docs/architecture.md ("Landing"). Validation is strict and
says exactly what is wrong, because silent drops are what users of other tools complain about
most (wire-formats.md). Keys this module does not know are ignored, as Segment does.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

MAX_MESSAGE_BYTES = 32 * 1024
MESSAGE_TYPES = frozenset({"identify", "track", "page", "screen", "group", "alias", "delete"})
_PROPERTY_TYPES = frozenset({"track", "page", "screen"})
_TRAIT_TYPES = frozenset({"identify", "group"})

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


def canonical_json(value: Any) -> str:
    """Stable JSON text: sorted keys, no spaces, non-ASCII text as is; values JSON has no type
    for (datetimes, decimals) as ``str()``, NaN and infinities as null.

    orjson writes it: encoding each message and its parts was over half of landing's time with
    the standard library. What orjson refuses is written by the standard library (integers
    beyond 64 bits, which JSON allows) or rejected (text with a lone surrogate, which no UTF-8
    file can hold).
    """
    try:
        return orjson.dumps(value, default=str, option=_CANONICAL_OPTIONS).decode()
    except orjson.JSONEncodeError:
        text = json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
        )
    try:
        text.encode()
    except UnicodeEncodeError as exc:
        raise InvalidMessage(
            f"message holds text that is not valid Unicode ({exc.reason}: "
            f"{text[max(exc.start - 20, 0) : exc.end + 20]!r})"
        ) from exc
    return text


def to_utc_naive(value: datetime) -> datetime:
    """A naive datetime is taken to be UTC already; an aware one is converted to UTC."""
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def parse_timestamp(value: Any, field: str) -> datetime:
    """ISO 8601 text (any offset, ``Z``; no offset means UTC) or unix seconds -> naive UTC."""
    if isinstance(value, datetime):
        return to_utc_naive(value)
    if isinstance(value, bool):
        raise InvalidMessage(f"{field} must be an ISO 8601 string or unix seconds, got a boolean")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise InvalidMessage(f"{field} is not a finite number: {value!r}")
        try:
            return datetime.fromtimestamp(value, UTC).replace(tzinfo=None)
        except (OverflowError, OSError, ValueError) as exc:
            raise InvalidMessage(f"{field} is out of range as unix seconds: {value!r}") from exc
    if isinstance(value, str):
        text = value.strip()
        try:
            return to_utc_naive(datetime.fromisoformat(text))
        except ValueError as exc:
            raise InvalidMessage(f"{field} is not an ISO 8601 timestamp: {value!r}") from exc
    raise InvalidMessage(
        f"{field} must be an ISO 8601 string or unix seconds, got {type(value).__name__}"
    )


def _identifier(msg: Mapping[str, Any], field: str) -> str | None:
    """An id field as text: strings as given, integers converted, empty means absent."""
    value = msg.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidMessage(f"{field} must be a string, got {type(value).__name__}")
    text = str(value)
    if len(text.encode()) > 150:
        raise InvalidMessage(f"{field} is longer than 150 bytes")
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
    if value is None:
        return None
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


def normalise_message(msg: Mapping[str, Any], received_at: datetime) -> dict[str, Any]:
    """Validate a Segment-spec message and return its landing row (see ``LANDING_COLUMNS``).

    Raises ``InvalidMessage`` naming the first problem found.
    """
    if not isinstance(msg, Mapping):
        raise InvalidMessage(f"message must be a JSON object, got {type(msg).__name__}")
    text = canonical_json(msg)
    size = len(text.encode())
    if size > MAX_MESSAGE_BYTES:
        raise InvalidMessage(f"message is {size} bytes, over the 32 KB limit ({MAX_MESSAGE_BYTES})")

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
        "message_id": message_id or hashlib.sha256(text.encode()).hexdigest(),
        "type": kind,
        "user_id": user_id,
        "anonymous_id": anonymous_id,
        "previous_id": previous_id if kind == "alias" else None,
        "group_id": group_id if kind == "group" else None,
        "event": event if kind == "track" else None,
        "name": name if kind in ("page", "screen") else None,
        "timestamp": timestamp or received,
        "received_at": received,
        "properties": _encoded(properties) if kind in _PROPERTY_TYPES else None,
        "traits": _encoded(traits) if kind in _TRAIT_TYPES else None,
        "context": _encoded(context),
    }
