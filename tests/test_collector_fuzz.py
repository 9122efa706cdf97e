"""Fuzzing every collector endpoint with random and malformed requests: never a 5xx.

schemathesis generates requests from the served OpenAPI description (valid and invalid ones);
hypothesis sends arbitrary bytes, JSON values and gzip bodies with and without credentials.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.inbox import HASH_HEADER, user_hash
from collector.openapi import openapi_document
from nudge.core.workspace import Workspace
from senders.channels.in_app import InboxStore
from senders.providers import RenderedMessage
from tests.conftest import COLLECTOR_ENV, CollectorProcess

SEGMENT_AUTH = ("test-write-key", "")
TRACK_AUTH = ("site", "api-key")
APP_KEY = "fuzz-app-key"
# Transactional sends reach a real provider: capture (email, sms), the in-app inbox file.
FUZZ_ENV = {**COLLECTOR_ENV, "NUDGE_APP_API_KEYS": APP_KEY, "NUDGE_EMAIL_PROVIDER": "capture",
            "NUDGE_SMS_PROVIDER": "capture"}  # fmt: skip
TEMPLATES = """
templates:
  - {name: welcome, channel: email, subject: "Hi {{ event.name | default('there') }}",
     html: "<p>{{ event }}</p>"}
  - {name: inbox, channel: in_app, title: "Hi", body: "{{ event.name | default('') }}"}
  - {name: code, channel: sms, body: "Your code is {{ event.code }}"}
"""
ORIGIN = "https://app.example.com"
INBOX_SECRET = "fuzz-inbox-secret-0123456789abcdef0123456789"
FUZZ_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

schema = schemathesis.openapi.from_dict(openapi_document())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    root: Path = tmp_path_factory.mktemp("fuzz")
    store = InboxStore(Workspace(root / "home", root / "content").inbox_path)  # one message
    store.add(RenderedMessage("d1", "k1", "u1", "in_app", "u1", "j", "s", "t", {"title": "Hi"}))
    store.close()
    env = {**FUZZ_ENV, "NUDGE_INBOX_SECRET": INBOX_SECRET, "NUDGE_INBOX_ORIGINS": ORIGIN}
    process = CollectorProcess(root / "home", root / "content", env)
    (root / "content" / "definitions.yml").write_text(TEMPLATES)
    process.start()
    yield process
    output = process.stop()
    assert "Traceback" not in output, output


def auth_for(path: str) -> tuple[str, str] | None:
    if path.startswith("/inbox/"):
        return None  # the person's hash instead (inbox_headers)
    return TRACK_AUTH if path.startswith("/api/") else SEGMENT_AUTH


def is_send(path: str) -> bool:
    return path.startswith("/v1/send/")


BEARER = {"Authorization": f"Bearer {APP_KEY}"}


def inbox_headers(user_id: str) -> dict[str, str]:
    """The person's hash, as the customer's server makes it, sent from an allowed origin."""
    return {HASH_HEADER: user_hash(INBOX_SECRET.encode(), user_id), "Origin": ORIGIN}


@schema.parametrize()
@FUZZ_SETTINGS
def test_schema_generated_requests_never_get_a_5xx(case: schemathesis.Case, server) -> None:  # type: ignore[no-untyped-def]
    if is_send(case.path):
        response = case.call(base_url=server.url, headers=BEARER, timeout=10)
    else:
        inbox = case.path.startswith("/inbox/")
        # schemathesis holds path parameters percent-encoded; the hash is of the user id itself
        headers = inbox_headers(unquote(case.path_parameters["user_id"])) if inbox else None
        response = case.call(
            base_url=server.url, auth=auth_for(case.path), headers=headers, timeout=10
        )
    assert response.status_code < 500, (case.method, case.formatted_path, response.text)


ENDPOINTS = [
    ("POST", "/v1/batch"),
    *(
        ("POST", f"/v1/{kind}")
        for kind in ("identify", "track", "page", "screen", "group", "alias")
    ),
    ("PUT", "/api/v1/customers/u1"),
    ("DELETE", "/api/v1/customers/u1"),
    ("POST", "/api/v1/customers/u1/events"),
    ("POST", "/api/v1/events"),
    ("PUT", "/api/v1/customers/u1/devices"),
    ("DELETE", "/api/v1/customers/u1/devices/t1"),
    ("POST", "/api/v1/customers/u1/suppress"),
    ("POST", "/api/v1/customers/u1/unsuppress"),
    ("POST", "/api/v1/merge_customers"),
    ("POST", "/api/v2/batch"),
    *(("POST", f"/v1/send/{channel}") for channel in ("email", "sms", "in_app", "push", "fax")),
    ("GET", "/api/v1/customers/u1/inbox"),
    ("POST", "/api/v1/customers/u1/inbox/read"),
    ("POST", "/api/v1/customers/u1/inbox/d1/read"),
    ("POST", "/api/v1/customers/u1/inbox/d1/dismiss"),
    ("GET", "/inbox/u1/messages"),
    ("POST", "/inbox/u1/messages/read"),
    ("POST", "/inbox/u1/messages/d1/read"),
    ("POST", "/inbox/u1/messages/d1/dismiss"),
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)
message_keys = st.sampled_from(
    [
        "type",
        "userId",
        "anonymousId",
        "event",
        "timestamp",
        "properties",
        "traits",
        "previousId",
        "groupId",
        "messageId",
        "name",
        "data",
        "device",
        "primary",
        "secondary",
        "batch",
        "context",
    ]
)
messages = st.dictionaries(message_keys, json_values, max_size=6)
send_bodies = st.fixed_dictionaries(
    {},
    optional={
        "transactional_message_id": st.sampled_from(["welcome", "inbox", "code", "nope"])
        | json_values,
        "identifiers": st.dictionaries(
            st.sampled_from(["id", "email", "cio_id"]), st.emails() | json_values, max_size=2
        ),
        "to": st.emails() | json_values,
        "message_data": st.dictionaries(st.sampled_from(["name", "code"]), json_values)
        | json_values,
        "send_at": json_values,
        "disable_message_retention": json_values,
    },
)
bodies = st.one_of(
    st.binary(max_size=300),
    send_bodies.map(lambda b: json.dumps(b).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    messages.map(lambda m: json.dumps(m).encode()),
    st.lists(messages, max_size=5).map(lambda b: json.dumps({"batch": b}).encode()),
)


@given(
    endpoint=st.sampled_from(ENDPOINTS),
    body=bodies,
    gzipped=st.booleans(),
    authenticated=st.booleans(),
    content_type=st.sampled_from(["application/json", "text/plain", "application/xml", None]),
)
@FUZZ_SETTINGS
def test_arbitrary_bodies_never_get_a_5xx(
    server: CollectorProcess,
    endpoint: tuple[str, str],
    body: bytes,
    gzipped: bool,
    authenticated: bool,
    content_type: str | None,
) -> None:
    method, path = endpoint
    headers = {} if content_type is None else {"Content-Type": content_type}
    if gzipped:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    if authenticated and is_send(path):
        headers.update(BEARER)
    if authenticated and path.startswith("/inbox/"):
        headers.update(inbox_headers("u1"))
    response = requests.request(
        method,
        server.url + path,
        data=body,
        headers=headers,
        auth=auth_for(path) if authenticated and not is_send(path) else None,
        timeout=10,
    )
    assert response.status_code < 500, (method, path, body, response.text)
    expected = (200, 400, 401, 404, 408, 409, 413, 415, 422) if is_send(path) else (
        200, 400, 401, 408, 413, 415)  # fmt: skip
    assert response.status_code in expected, response.text
