"""Customer.io Track API v1 calls as Segment-spec messages (the mapping docs/collector.md lists).

Each function takes what the call carries (the path's identifier, the JSON body) and returns
the message to land, or raises ``InvalidMessage`` saying what is wrong, including Customer.io's
own limits (identifier and attribute name 150 bytes, attribute value 1000 bytes, 300 attributes,
event name 100 bytes, event data 100 KB). Everything else is checked when the message is landed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from nudge.core.landing.erasure import USER_SUPPRESSED, USER_UNSUPPRESSED
from nudge.core.landing.messages import InvalidMessage, shown

MAX_ID_BYTES = 150
MAX_ATTRIBUTE_NAME_BYTES = 150
MAX_ATTRIBUTE_VALUE_BYTES = 1000
MAX_ATTRIBUTES = 300
MAX_EVENT_NAME_BYTES = 100
MAX_EVENT_DATA_BYTES = 100 * 1024
DEVICE_PLATFORMS = frozenset({"ios", "android"})
EMAIL_PREFIX = "email:"
CIO_PREFIX = "cio_"
# What a person's identifier is in each key a merge accepts.
MERGE_KEYS = ("id", "email", "cio_id")

DEVICE_UPDATED = "Device Created or Updated"
DEVICE_DELETED = "Device Deleted"


@dataclass(frozen=True)
class Person:
    """Whom a call is about: ``user_id`` is what nudge knows them by; ``email`` is set when
    the identifier was an email address (``email:<address>``, or text holding an ``@``)."""

    user_id: str
    email: str | None = None


def person(identifier: str) -> Person:
    """The person a path identifier names, the way Customer.io reads it: ``email:<address>``
    and identifiers that are email addresses identify by email (the address is the user id
    and the ``email`` trait); ``cio_<id>`` and anything else is the user id as written."""
    if not identifier:
        raise InvalidMessage("the customer identifier is empty")
    if len(identifier.encode()) > MAX_ID_BYTES:
        raise InvalidMessage(f"the customer identifier is longer than {MAX_ID_BYTES} bytes")
    if identifier.startswith(EMAIL_PREFIX):
        email = identifier.removeprefix(EMAIL_PREFIX)
        if "@" not in email:
            raise InvalidMessage(f"{identifier!r} does not hold an email address after 'email:'")
        return Person(email, email)
    if "@" in identifier:
        return Person(identifier, identifier)
    return Person(identifier)


def _object(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidMessage(f"{what} must be a JSON object, got {type(value).__name__}")
    return dict(value)


def _json_size(value: Any) -> int:
    try:
        return len(orjson.dumps(value))
    except orjson.JSONEncodeError as exc:
        raise InvalidMessage(f"cannot be written as JSON: {exc}") from exc


def check_attributes(attributes: Mapping[str, Any]) -> None:
    """Customer.io's limits on a person's attributes."""
    if len(attributes) > MAX_ATTRIBUTES:
        raise InvalidMessage(
            f"{len(attributes)} attributes, over Customer.io's limit of {MAX_ATTRIBUTES}"
        )
    for name, value in attributes.items():
        if len(name.encode(errors="replace")) > MAX_ATTRIBUTE_NAME_BYTES:
            raise InvalidMessage(
                f"attribute name {shown(name, 40)} is longer than {MAX_ATTRIBUTE_NAME_BYTES} bytes"
            )
        size = len(value.encode(errors="replace")) if isinstance(value, str) else _json_size(value)
        if size > MAX_ATTRIBUTE_VALUE_BYTES:
            raise InvalidMessage(
                f"attribute {shown(name, 40)} is {size} bytes, over Customer.io's limit of "
                f"{MAX_ATTRIBUTE_VALUE_BYTES}"
            )


def identify(identifier: str, body: Any) -> dict[str, Any]:
    """``PUT /api/v1/customers/{id}``: the body's attributes become traits; ``_timestamp`` is
    the message's time and ``anonymous_id`` its anonymousId (linking earlier anonymous events)."""
    who = person(identifier)
    traits = _object(body, "the request body")
    check_attributes(traits)
    timestamp = traits.pop("_timestamp", None)
    anonymous_id = traits.pop("anonymous_id", None)
    if who.email is not None:
        traits.setdefault("email", who.email)
    message: dict[str, Any] = {"type": "identify", "userId": who.user_id, "traits": traits}
    if anonymous_id is not None:
        message["anonymousId"] = anonymous_id
    if timestamp is not None:
        message["timestamp"] = timestamp
    return message


def delete(identifier: str) -> dict[str, Any]:
    """``DELETE /api/v1/customers/{id}``."""
    return {"type": "delete", "userId": person(identifier).user_id}


def _event(body: Any) -> dict[str, Any]:
    """The parts of an event body common to known and anonymous people."""
    fields = _object(body, "the request body")
    name = fields.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidMessage("the event needs a name (a non-empty string)")
    if len(name.encode(errors="replace")) > MAX_EVENT_NAME_BYTES:
        raise InvalidMessage(f"the event name is longer than {MAX_EVENT_NAME_BYTES} bytes")
    data = _object(fields.get("data"), "data")
    if (size := _json_size(data)) > MAX_EVENT_DATA_BYTES:
        raise InvalidMessage(f"data is {size} bytes, over Customer.io's limit of 100 KB")
    kind = fields.get("type") or "event"
    if kind not in ("event", "page", "screen"):
        raise InvalidMessage(f"type {shown(kind)} is not one of event, page, screen")
    if kind == "event":
        message: dict[str, Any] = {"type": "track", "event": name, "properties": data}
    else:
        message = {"type": kind, "name": name, "properties": data}
    if fields.get("id") is not None:
        message["messageId"] = fields["id"]
    if fields.get("timestamp") is not None:
        message["timestamp"] = fields["timestamp"]
    return message


def event(identifier: str, body: Any) -> dict[str, Any]:
    """``POST /api/v1/customers/{id}/events``."""
    return {**_event(body), "userId": person(identifier).user_id}


def anonymous_event(body: Any) -> dict[str, Any]:
    """``POST /api/v1/events``: an event of someone known only by ``anonymous_id``."""
    message = _event(body)
    anonymous_id = _object(body, "the request body").get("anonymous_id")
    if anonymous_id is not None:
        message["anonymousId"] = anonymous_id
    return message


def device(identifier: str, body: Any) -> dict[str, Any]:
    """``PUT /api/v1/customers/{id}/devices`` ``{device: {id, platform, last_used, attributes}}``."""
    fields = _object(_object(body, "the request body").get("device"), "device")
    token = fields.pop("id", None)
    if not isinstance(token, str) or not token:
        raise InvalidMessage("device.id (the push token) must be a non-empty string")
    platform = fields.pop("platform", None)
    if platform not in DEVICE_PLATFORMS:
        raise InvalidMessage(f"device.platform must be ios or android, got {shown(platform)}")
    attributes = _object(fields.get("attributes"), "device.attributes")
    check_attributes(attributes)
    properties = {"device_id": token, "platform": platform, **fields}
    message: dict[str, Any] = {
        "type": "track",
        "userId": person(identifier).user_id,
        "event": DEVICE_UPDATED,
        "properties": properties,
    }
    if fields.get("last_used") is not None:
        message["timestamp"] = fields["last_used"]
    return message


def device_deleted(identifier: str, token: str) -> dict[str, Any]:
    """``DELETE /api/v1/customers/{id}/devices/{token}``."""
    return {
        "type": "track",
        "userId": person(identifier).user_id,
        "event": DEVICE_DELETED,
        "properties": {"device_id": token},
    }


def suppression(identifier: str, suppressed: bool) -> dict[str, Any]:
    """``POST /api/v1/customers/{id}/suppress`` (``suppressed``) or ``/unsuppress``."""
    return {
        "type": "track",
        "userId": person(identifier).user_id,
        "event": USER_SUPPRESSED if suppressed else USER_UNSUPPRESSED,
        "properties": {},
    }


def _merge_party(body: Mapping[str, Any], role: str) -> str:
    """The user id of the person ``body[role]`` names by id, email or cio_id."""
    party = _object(body.get(role), role)
    given = [key for key in MERGE_KEYS if party.get(key) not in (None, "")]
    if len(given) != 1:
        raise InvalidMessage(f"{role} must name the person by exactly one of id, email, cio_id")
    value = party[given[0]]
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidMessage(f"{role}.{given[0]} must be a string")
    text = str(value)
    if given[0] == "cio_id":
        return person(CIO_PREFIX + text).user_id
    if given[0] == "email":
        return person(EMAIL_PREFIX + text).user_id
    return person(text).user_id


def merge(body: Any) -> dict[str, Any]:
    """``POST /api/v1/merge_customers`` ``{primary: {...}, secondary: {...}}``: the secondary
    person becomes the primary one (an alias marked as a merge)."""
    fields = _object(body, "the request body")
    primary, secondary = _merge_party(fields, "primary"), _merge_party(fields, "secondary")
    if primary == secondary:
        raise InvalidMessage("primary and secondary are the same person")
    return {
        "type": "alias",
        "userId": primary,
        "previousId": secondary,
        "context": {"nudge": {"merge": True}},
    }


# Track API v2 batch: person operations, each turned into the message its v1 call gives.
V2_ACTIONS = (
    "identify",
    "delete",
    "event",
    "page",
    "screen",
    "add_device",
    "delete_device",
    "suppress",
    "unsuppress",
    "merge",
)


def v2_operation(operation: Any) -> dict[str, Any]:
    """One operation of ``POST /api/v2/batch`` (``type: person``) as its message."""
    fields = _object(operation, "the operation")
    if fields.get("type") != "person":
        raise InvalidMessage(f"type {shown(fields.get('type'))} is not supported (only person)")
    action = fields.get("action")
    if action not in V2_ACTIONS:
        raise InvalidMessage(f"action {shown(action)} is not one of {', '.join(V2_ACTIONS)}")
    if action == "merge":
        return merge(fields)
    user_id = _merge_party(fields, "identifiers")
    attributes = fields.get("attributes")
    if action == "identify":
        message = identify(user_id, attributes)
        if fields.get("timestamp") is not None:
            message["timestamp"] = fields["timestamp"]
        return message
    if action == "delete":
        return delete(user_id)
    if action in ("event", "page", "screen"):
        body = {"name": fields.get("name"), "data": attributes, "type": action}
        body.update({k: fields[k] for k in ("id", "timestamp") if k in fields})
        return event(user_id, body)
    if action in ("suppress", "unsuppress"):
        return suppression(user_id, action == "suppress")
    device_fields = _object(fields.get("device"), "device")
    token = device_fields.pop("token", None)
    if action == "delete_device":
        if not isinstance(token, str) or not token:
            raise InvalidMessage("device.token must be a non-empty string")
        return device_deleted(user_id, token)
    return device(user_id, {"device": {**device_fields, "id": token}})
