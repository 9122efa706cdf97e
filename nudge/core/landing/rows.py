"""A message's journal row in one pass: the collector's hot path.

``normalise_message`` checks every field with a helper of its own and names the first problem;
``encode_row`` then turns its row into the journal's form. For a batched event that was most
of the collector's work. ``quick_row`` does both at once for the messages SDKs send almost
always (text ids of ordinary length, ISO 8601 text timestamps, JSON objects where objects
belong) and gives up, returning ``None``, on anything else: that message then takes the full
check, which either accepts a rarer form (integer ids, unix timestamps, long ids) or says what
is wrong.

So the two never disagree: ``quick_row`` either declines or returns exactly
``encode_row(normalise_message(...))`` (tests/test_landing_rows.py checks this on generated
messages, valid and not).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from nudge.core.landing.journal import encode_row, micros
from nudge.core.landing.messages import (
    MAX_ID_BYTES,
    MESSAGE_TYPES,
    PROPERTY_TYPES,
    TRAIT_TYPES,
    InvalidMessage,
    canonical_bytes,
    canonical_json,
    normalise_message,
)

# Text this many characters long is at most MAX_ID_BYTES bytes in UTF-8 (4 bytes a character):
# its size needs no encoding to be checked. Longer ids take the full check.
_QUICK_ID_CHARS = MAX_ID_BYTES // 4


def journal_row(
    message: Any, received_at: datetime, received_micros: int, *, max_bytes: int
) -> list[Any]:
    """``encode_row(normalise_message(message, received_at, max_bytes=max_bytes))``, quicker
    for common messages. ``received_micros`` is ``received_at`` as the journal writes it
    (``received_micros(received_at)``), worked out once per request.

    Raises ``InvalidMessage`` naming the first problem found.
    """
    row = quick_row(message, received_micros, max_bytes)
    if row is None:
        row = encode_row(normalise_message(message, received_at, max_bytes=max_bytes))
    return row


def received_micros(received_at: datetime) -> int:
    """An arrival time as the journal writes it."""
    return micros(received_at)


def _iso_micros(value: Any) -> int | None:
    """ISO 8601 text as the journal's microseconds, or ``None`` for anything the full check
    must look at: not text, not ISO 8601, or in year 1 or 9999 (where an offset can carry it
    out of range)."""
    if type(value) is not str:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if not 1 < moment.year < 9999:
        return None
    return micros(moment)


def _plain_id(value: Any) -> bool:
    """Whether an id field is absent or text short enough to need no size check."""
    return value is None or (type(value) is str and len(value) <= _QUICK_ID_CHARS)


def quick_row(message: Any, received_micros: int, max_bytes: int) -> list[Any] | None:
    """The journal row of a plainly valid message, or ``None`` (see the module's docstring)."""
    if type(message) is not dict:
        return None
    get = message.get
    kind = get("type")
    if type(kind) is not str or kind not in MESSAGE_TYPES:
        return None
    message_id = get("messageId")
    user_id = get("userId")
    anonymous_id = get("anonymousId")
    previous_id = get("previousId")
    group_id = get("groupId")
    if not (
        _plain_id(message_id)
        and _plain_id(user_id)
        and _plain_id(anonymous_id)
        and _plain_id(previous_id)
        and _plain_id(group_id)
    ):
        return None
    event = get("event")
    name = get("name")
    if (event is not None and type(event) is not str) or (
        name is not None and type(name) is not str
    ):
        return None
    context = get("context")
    properties = get("properties")
    traits = get("traits")
    for value in (context, properties, traits):
        if value is not None and type(value) is not dict:
            return None
    if traits is None and context is not None:
        traits = context.get("traits")
        if traits is not None and type(traits) is not dict:
            return None

    # Empty text means absent, as in normalise_message.
    user_id = user_id or None
    anonymous_id = anonymous_id or None
    if kind == "alias":
        if not previous_id or user_id is None:
            return None
    elif kind == "delete":
        if user_id is None:
            return None
    elif user_id is None and anonymous_id is None:
        return None
    event = event or None
    if (kind == "track" and event is None) or (kind == "group" and not group_id):
        return None

    timestamp = None
    for field in ("timestamp", "originalTimestamp", "sentAt"):
        value = get(field)
        if value is not None:
            parsed = _iso_micros(value)
            if parsed is None:
                return None
            if timestamp is None and field != "sentAt":
                timestamp = parsed

    try:
        text = canonical_bytes(message)
    except InvalidMessage:
        return None
    if len(text) > max_bytes:
        return None
    return [
        message_id or hashlib.sha256(text).hexdigest(),
        kind,
        user_id,
        anonymous_id,
        previous_id if kind == "alias" else None,
        group_id if kind == "group" else None,
        event if kind == "track" else None,
        (name or None) if kind in ("page", "screen") else None,
        received_micros if timestamp is None else timestamp,
        received_micros,
        canonical_json(properties) if properties is not None and kind in PROPERTY_TYPES else None,
        canonical_json(traits) if traits is not None and kind in TRAIT_TYPES else None,
        None if context is None else canonical_json(context),
    ]
