"""The OpenAPI description of every collector endpoint (served at ``/openapi.json``)."""

from __future__ import annotations

from functools import cache
from typing import Any

from senders.registry import CHANNELS

_JSON_OBJECT = {"type": "object", "additionalProperties": True}
_ID = {"type": "string", "maxLength": 150}
_MESSAGE = {
    "type": "object",
    "description": "A Segment-spec message; userId or anonymousId is required (alias: both "
    "userId and previousId), track needs event, group needs groupId.",
    "properties": {
        "type": {"type": "string"},
        "messageId": _ID,
        "userId": _ID,
        "anonymousId": _ID,
        "previousId": _ID,
        "groupId": _ID,
        "event": {"type": "string"},
        "name": {"type": "string"},
        "timestamp": {"type": ["string", "number"]},
        "originalTimestamp": {"type": ["string", "number"]},
        "sentAt": {"type": ["string", "number"]},
        "properties": _JSON_OBJECT,
        "traits": _JSON_OBJECT,
        "context": _JSON_OBJECT,
        "integrations": _JSON_OBJECT,
    },
}
_ANSWER = {
    "type": "object",
    "properties": {
        "success": {"type": "boolean"},
        "accepted": {"type": "integer"},
        "suppressed": {"type": "integer"},
        "rejected": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "index": {"type": "integer"},
                    "messageId": {"type": ["string", "null"]},
                    "reason": {"type": "string"},
                },
            },
        },
    },
}
_REFUSALS = {
    "400": "Nothing accepted: the body is not JSON, or every message was rejected (see rejected)",
    "401": "Missing or unknown credentials",
    "403": "No credentials of this kind are configured: the collector takes no data here",
    "408": "The body did not arrive in time",
    "413": "The body is over 500 KB (also once decompressed)",
    "415": "The body is not JSON, or its Content-Encoding is not gzip",
    "503": "The accepted messages could not be written to disk; nothing was acknowledged",
}


def _operation(summary: str, security: str, body: dict[str, Any] | None) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {
            "description": "Every accepted message is on disk; the answer lists the rejected",
            "content": {"application/json": {"schema": _ANSWER}},
        }
    }
    responses.update({code: {"description": text} for code, text in _REFUSALS.items()})
    operation: dict[str, Any] = {
        "summary": summary,
        "security": [{security: []}],
        "responses": responses,
    }
    if body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body}},
        }
    return operation


def _path_parameters(*names: str) -> list[dict[str, Any]]:
    return [
        {"name": n, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for n in names
    ]


def _merge_party() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"id": _ID, "email": {"type": "string"}, "cio_id": {"type": "string"}},
    }


def _transactional() -> dict[str, Any]:
    """``POST /v1/send/{channel}`` (collector.transactional, docs/transactional.md)."""
    body = {
        "type": "object",
        "required": ["transactional_message_id", "identifiers"],
        "properties": {
            "transactional_message_id": {
                "type": ["string", "integer"],
                "description": "The name of the template to send",
                "examples": ["welcome"],
            },
            "identifiers": {
                "type": "object",
                "minProperties": 1,
                "maxProperties": 1,
                "properties": {"id": _ID, "email": {"type": "string"}},
            },
            "to": {"type": "string"},
            "message_data": _JSON_OBJECT,
            "send_at": {"type": "integer", "description": "Not in the future: sent at once"},
            "disable_message_retention": {"type": "boolean"},
        },
    }
    answer = {
        "type": "object",
        "properties": {"delivery_id": {"type": "string"}, "queued_at": {"type": "integer"}},
    }
    refusals = {
        "400": "Not JSON, a field missing or wrong, no recipient, recipient suppressed, or no "
        "provider for the channel",
        "401": "Missing or unknown App API key",
        "403": "NUDGE_APP_API_KEYS is not set: the collector sends nothing",
        "404": "No template of that name for the channel, or no such channel",
        "408": "The body did not arrive in time",
        "409": "A request with the same Idempotency-Key is still being sent",
        "413": "The body is over 500 KB",
        "415": "The body is not JSON, or its Content-Encoding is not gzip",
        "422": "The Idempotency-Key was used for another body, or the template does not render",
        "502": "The provider refused the message, or its outcome is unknown (not resent)",
        "503": "The provider could not take it now (nothing delivered; the same key may retry), "
        "or cannot start",
    }
    responses: dict[str, Any] = {
        "200": {
            "description": "Sent: the provider took the message",
            "content": {"application/json": {"schema": answer}},
        },
        **{code: {"description": text} for code, text in refusals.items()},
    }
    return {
        "/v1/send/{channel}": {
            "parameters": [
                {
                    "name": "channel",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "enum": list(CHANNELS)},
                },
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                },
            ],
            "post": {
                "summary": "Send a transactional message at once (Customer.io's App API shape)",
                "security": [{"appKey": []}],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": body}},
                },
                "responses": responses,
            },
        }
    }


_INBOX_MESSAGE = {
    "type": "object",
    "properties": {
        "delivery_id": {"type": "string"},
        "content": {
            **_JSON_OBJECT,
            "description": "The rendered template fields: title, body, ...",
        },
        "created_at": {"type": "string", "format": "date-time"},
        "read_at": {"type": ["string", "null"], "format": "date-time"},
        "dismissed_at": {"type": ["string", "null"], "format": "date-time"},
    },
}
_INBOX_ANSWERS = {
    "list": {
        "type": "object",
        "properties": {
            "messages": {"type": "array", "items": _INBOX_MESSAGE},
            "unread": {"type": "integer"},
            "next": {"type": ["string", "null"], "description": "before= of the next page"},
        },
    },
    "read_all": {
        "type": "object",
        "properties": {"read": {"type": "integer"}, "unread": {"type": "integer"}},
    },
    "stamp": {
        "type": "object",
        "properties": {"delivery_id": {"type": "string"}, "unread": {"type": "integer"}},
    },
}
_INBOX_QUERY = [
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
    {"name": "before", "in": "query", "schema": {"type": "string"}},
    {"name": "include_dismissed", "in": "query", "schema": {"type": "boolean"}},
]


def _inbox_paths(prefix: str, person: str, security: str) -> dict[str, Any]:
    """The four inbox operations under ``prefix`` (docs/inbox.md)."""

    def operation(summary: str, answer: str, extra: dict[str, str]) -> dict[str, Any]:
        refusals = {
            "400": "A bad identifier or query parameter",
            "401": "Missing or wrong credentials",
            "403": "No credentials of this kind are configured",
            **extra,
        }
        return {
            "summary": summary,
            "security": [{security: []}],
            "responses": {
                "200": {
                    "description": "Done",
                    "content": {"application/json": {"schema": _INBOX_ANSWERS[answer]}},
                },
                **{code: {"description": text} for code, text in refusals.items()},
            },
        }

    stamped = {"404": "The person has no such message", "503": "The event could not be landed"}
    return {
        prefix: {
            "parameters": _path_parameters(person),
            "get": {
                **operation("A person's inbox, newest first", "list", {}),
                "parameters": _INBOX_QUERY,
            },
        },
        f"{prefix}/read": {
            "parameters": _path_parameters(person),
            "post": operation("Mark every message read", "read_all", stamped),
        },
        f"{prefix}/{{delivery_id}}/read": {
            "parameters": _path_parameters(person, "delivery_id"),
            "post": operation("Mark one message read", "stamp", stamped),
        },
        f"{prefix}/{{delivery_id}}/dismiss": {
            "parameters": _path_parameters(person, "delivery_id"),
            "post": operation("Dismiss one message", "stamp", stamped),
        },
    }


@cache
def openapi_document() -> dict[str, Any]:
    segment: dict[str, Any] = {
        "/v1/batch": {
            "post": _operation(
                "Segment batch: up to 500 KB of messages",
                "writeKey",
                {
                    "type": "object",
                    "required": ["batch"],
                    "properties": {
                        "batch": {"type": "array", "items": _MESSAGE},
                        "context": _JSON_OBJECT,
                        "sentAt": {"type": "string"},
                    },
                },
            )
        }
    }
    for kind in ("identify", "track", "page", "screen", "group", "alias"):
        segment[f"/v1/{kind}"] = {"post": _operation(f"Segment {kind}", "writeKey", _MESSAGE)}
    customer = "/api/v1/customers/{identifier}"
    event_body = {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string"},
            "id": {"type": "string"},
            "type": {"type": "string", "enum": ["event", "page", "screen"]},
            "timestamp": {"type": "integer"},
            "data": _JSON_OBJECT,
        },
    }
    track: dict[str, Any] = {
        customer: {
            "parameters": _path_parameters("identifier"),
            "put": _operation("Add or update a person (attributes)", "siteKey", _JSON_OBJECT),
            "delete": _operation("Delete a person", "siteKey", None),
        },
        f"{customer}/events": {
            "parameters": _path_parameters("identifier"),
            "post": _operation("Track an event of a person", "siteKey", event_body),
        },
        "/api/v1/events": {
            "post": _operation(
                "Track an anonymous event",
                "siteKey",
                {**event_body, "properties": {**event_body["properties"], "anonymous_id": _ID}},
            )
        },
        f"{customer}/devices": {
            "parameters": _path_parameters("identifier"),
            "put": _operation(
                "Add or update a device (push token)",
                "siteKey",
                {
                    "type": "object",
                    "required": ["device"],
                    "properties": {
                        "device": {
                            "type": "object",
                            "required": ["id", "platform"],
                            "properties": {
                                "id": {"type": "string"},
                                "platform": {"type": "string", "enum": ["ios", "android"]},
                                "last_used": {"type": "integer"},
                                "attributes": _JSON_OBJECT,
                            },
                        }
                    },
                },
            ),
        },
        f"{customer}/devices/{{token}}": {
            "parameters": _path_parameters("identifier", "token"),
            "delete": _operation("Delete a device", "siteKey", None),
        },
        f"{customer}/suppress": {
            "parameters": _path_parameters("identifier"),
            "post": _operation("Delete a person and keep them out", "siteKey", None),
        },
        f"{customer}/unsuppress": {
            "parameters": _path_parameters("identifier"),
            "post": _operation("Let a suppressed person back in", "siteKey", None),
        },
        "/api/v1/merge_customers": {
            "post": _operation(
                "Merge the secondary person into the primary",
                "siteKey",
                {
                    "type": "object",
                    "required": ["primary", "secondary"],
                    "properties": {"primary": _merge_party(), "secondary": _merge_party()},
                },
            )
        },
    }
    track["/api/v2/batch"] = {
        "post": _operation(
            "Person operations (identify, delete, event, page, screen, add_device, "
            "delete_device, suppress, unsuppress, merge)",
            "siteKey",
            {
                "type": "object",
                "required": ["batch"],
                "properties": {
                    "batch": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["type", "action"],
                            "properties": {
                                "type": {"type": "string", "enum": ["person"]},
                                "action": {"type": "string"},
                                "identifiers": _merge_party(),
                                "attributes": _JSON_OBJECT,
                                "name": {"type": "string"},
                                "id": {"type": "string"},
                                "timestamp": {"type": "integer"},
                                "device": _JSON_OBJECT,
                                "primary": _merge_party(),
                                "secondary": _merge_party(),
                            },
                        },
                    }
                },
            },
        )
    }
    webhook_refusals = {
        "400": {"description": "Not the provider's shape"},
        "401": {"description": "The signature or credentials do not match"},
        "403": {"description": "That provider's secret is not set: nothing is taken"},
    }
    webhooks: dict[str, Any] = {}
    for provider, media_type, body in (
        ("twilio", "application/x-www-form-urlencoded", _JSON_OBJECT),
        ("sendgrid", "application/json", {"type": "array", "items": _JSON_OBJECT}),
        ("postmark", "application/json", _JSON_OBJECT),
    ):
        webhooks[f"/webhooks/{provider}"] = {
            "post": {
                "summary": f"{provider.capitalize()} delivery callbacks (docs/delivery-feedback.md)",
                "requestBody": {"required": True, "content": {media_type: {"schema": body}}},
                "responses": {"200": {"description": "Landed"}, **webhook_refusals},
            }
        }
    inbox = {
        **_inbox_paths("/api/v1/customers/{identifier}/inbox", "identifier", "siteKey"),
        **_inbox_paths("/inbox/{user_id}/messages", "user_id", "userHash"),
        "/inbox/{user_id}": {
            "parameters": _path_parameters("user_id"),
            "get": {
                "summary": "The person's inbox page (user_hash in the query)",
                "security": [{"userHash": []}],
                "responses": {
                    "200": {"description": "The page", "content": {"text/html": {}}},
                    "401": {"description": "Missing or wrong user hash"},
                    "403": {"description": "NUDGE_INBOX_SECRET is not set"},
                },
            },
        },
    }
    health = {
        **_transactional(),
        "/health": {
            "get": {
                "summary": "The collector is up",
                "security": [],
                "responses": {"200": {"description": "Up"}},
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This description",
                "security": [],
                "responses": {"200": {"description": "The OpenAPI document"}},
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "nudge collector",
            "version": "1",
            "description": "Segment HTTP Tracking API and Customer.io Track API v1 ingest. A 200 "
            "means every accepted message is on disk; rejected ones are listed with a reason. "
            "Customer.io's transactional API sends a message at once.",
        },
        "components": {
            "securitySchemes": {
                "writeKey": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "A write key as user name, empty password",
                },
                "siteKey": {"type": "http", "scheme": "basic", "description": "site_id:api_key"},
                "appKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A Customer.io App API key (NUDGE_APP_API_KEYS)",
                },
                "userHash": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Nudge-User-Hash",
                    "description": "Hex HMAC-SHA256 of the user id keyed with NUDGE_INBOX_SECRET "
                    "(or the user_hash query parameter)",
                },
            }
        },
        "paths": {**health, **segment, **track, **inbox, **webhooks},
    }
