"""The Segment ingest endpoints answered ahead of Starlette (``collector.front``) answer every
request exactly as the Starlette routes behind it do: status, headers, body, and what is kept in
quarantine. The same requests go to two collectors over their own workspaces, once through the
front and once past it (a ``root_path`` sends a request on to Starlette's routes)."""

from __future__ import annotations

import asyncio
import base64
import gzip
from pathlib import Path
from typing import Any

import orjson
import pytest

from collector.app import ACCEPTED_HEADERS, create_app
from collector.bodies import Refused
from collector.front import IngestFront
from collector.settings import Credentials, Limits
from nudge.core.landing.quarantine import entries
from nudge.core.workspace import Workspace

KEY = "front-key"
AUTH = "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()
JSON = {"content-type": "application/json", "authorization": AUTH}
TRACK = {"type": "track", "userId": "u1", "event": "Signed Up", "messageId": "m-1"}

# (path, headers, body chunks, then: "end" (the body is whole), "gone" (the client goes away),
# "stall" (the client sends no more))
Request = tuple[str, dict[str, str], list[bytes], str]


def _json(value: Any) -> list[bytes]:
    return [orjson.dumps(value)]


REQUESTS: dict[str, Request] = {
    "a track call": ("/v1/track", JSON, _json(TRACK), "end"),
    "each message type": ("/v1/identify", JSON, _json({"userId": "u1", "traits": {}}), "end"),
    "a page": ("/v1/page", JSON, _json({"anonymousId": "a", "name": "Home"}), "end"),
    "a screen without ids": ("/v1/screen", JSON, _json({"name": "Home"}), "end"),
    "a group without groupId": ("/v1/group", JSON, _json({"userId": "u1"}), "end"),
    "an alias": ("/v1/alias", JSON, _json({"userId": "u1", "previousId": "a"}), "end"),
    "the body in chunks": (
        "/v1/track",
        JSON,
        [b'{"type": "track", "userId": "u1", ', b'"event": "E"}'],
        "end",
    ),
    "a batch": (
        "/v1/batch",
        JSON,
        _json({"batch": [TRACK, {"type": "track"}, 3], "context": {"ip": "1.2.3.4"}}),
        "end",
    ),
    "a batch all refused": ("/v1/batch", JSON, _json({"batch": [{"type": "nope"}]}), "end"),
    "a batch that is no batch": ("/v1/batch", JSON, _json({"messages": []}), "end"),
    "a gzipped batch": (
        "/v1/batch",
        {**JSON, "content-encoding": "gzip"},
        [gzip.compress(orjson.dumps({"batch": [TRACK]}))],
        "end",
    ),
    "truncated gzip": (
        "/v1/track",
        {**JSON, "content-encoding": "gzip"},
        [gzip.compress(orjson.dumps(TRACK))[:-9]],
        "end",
    ),
    "not gzip": ("/v1/track", {**JSON, "content-encoding": "gzip"}, [b"{}"], "end"),
    "an unknown encoding": ("/v1/track", {**JSON, "content-encoding": "br"}, [b"{}"], "end"),
    "a wrong content type": ("/v1/track", {**JSON, "content-type": "text/html"}, [b"{}"], "end"),
    "text/plain": ("/v1/track", {**JSON, "content-type": "text/plain"}, _json(TRACK), "end"),
    "no content type": ("/v1/track", {"authorization": AUTH}, _json(TRACK), "end"),
    "a declared length over the limit": (
        "/v1/batch",
        {**JSON, "content-length": str(10**7)},
        [b"{}"],
        "end",
    ),
    "a body over the limit": ("/v1/batch", JSON, [b" " * 300_000, b" " * 300_000], "end"),
    "a body that is not JSON": ("/v1/track", JSON, [b'{"type": "track",'], "end"),
    "an empty body": ("/v1/track", JSON, [b""], "end"),
    "an array": ("/v1/track", JSON, _json([TRACK]), "end"),
    "the wrong type for the path": ("/v1/page", JSON, _json(TRACK), "end"),
    "an integer beyond 64 bits": (
        "/v1/track",
        JSON,
        [
            b'{"type": "track", "userId": "u1", "event": "E", "properties": {"n": 1%s}}'
            % (b"0" * 30)
        ],
        "end",
    ),
    "no credentials": ("/v1/track", {"content-type": "application/json"}, _json(TRACK), "end"),
    "an unknown key": (
        "/v1/batch",
        {**JSON, "authorization": "Basic " + base64.b64encode(b"other:").decode()},
        _json({"batch": [TRACK]}),
        "end",
    ),
    "a bearer token": ("/v1/track", {**JSON, "authorization": "Bearer x"}, _json(TRACK), "end"),
    "broken Basic": ("/v1/track", {**JSON, "authorization": "Basic !!"}, _json(TRACK), "end"),
    "a client gone mid-body": ("/v1/track", JSON, [b'{"type": '], "gone"),
    "a client too slow with its body": ("/v1/track", JSON, [b'{"type": '], "stall"),
}


def _scope(path: str, headers: dict[str, str], root_path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": root_path,
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "headers": [(b"host", b"collector")]
        + [(name.encode(), value.encode("latin-1")) for name, value in headers.items()],
    }


async def _send(app: Any, request: Request, root_path: str) -> dict[str, Any]:
    path, headers, chunks, then = request
    if "content-length" not in headers:
        headers = {**headers, "content-length": str(sum(map(len, chunks)))}
    waiting = list(chunks)

    async def receive() -> dict[str, Any]:
        if waiting:
            chunk = waiting.pop(0)
            more = bool(waiting) or then != "end"
            return {"type": "http.request", "body": chunk, "more_body": more}
        if then == "gone":
            return {"type": "http.disconnect"}
        await asyncio.sleep(3600)  # a client that sends no more
        raise AssertionError("the collector waited for a body past its time limit")

    answer: dict[str, Any] = {"body": b""}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["headers"] = sorted(message["headers"])
        else:
            answer["body"] += message.get("body", b"")

    await app(_scope(path, headers, root_path), receive, send)
    answer["body"] = orjson.loads(answer["body"])
    return answer


async def _answers(home: Path, root_path: str) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    (home / "content").mkdir(parents=True)
    workspace = Workspace(home / "home", home / "content")
    app = create_app(workspace, Credentials(write_keys=frozenset({KEY})), Limits(body_seconds=0.5))
    assert IngestFront in [m.cls for m in app.user_middleware]
    collector = app.state.collector
    async with collector.lifespan(app):
        answers = {name: await _send(app, request, root_path) for name, request in REQUESTS.items()}
    kept = sorted(
        (e.source, str(e.index), e.reason, orjson.dumps(e.message, default=str))
        for e in entries(workspace.quarantine_dir)
    )
    return answers, kept


def test_the_front_serves_segment_ingest_and_answers_as_the_routes_behind_it(
    tmp_path: Path,
) -> None:
    front, front_kept = asyncio.run(_answers(tmp_path / "front", ""))
    routes, routes_kept = asyncio.run(_answers(tmp_path / "routes", "/behind"))

    for name in REQUESTS:
        assert front[name] == routes[name], name
    assert front_kept == routes_kept
    # the cases above reach every kind of answer
    statuses = {answer["status"] for answer in front.values()}
    assert statuses == {200, 400, 401, 408, 413, 415}
    assert front["a batch"]["body"]["accepted"] == 1
    assert [r["index"] for r in front["a batch"]["body"]["rejected"]] == [1, 2]
    assert {source for source, *_ in front_kept} >= {"POST /v1/batch", "POST /v1/track"}


def test_accepted_credentials_are_remembered_up_to_a_bound_and_refusals_never(
    tmp_path: Path,
) -> None:
    (tmp_path / "content").mkdir()
    app = create_app(
        Workspace(tmp_path / "home", tmp_path / "content"),
        Credentials(write_keys=frozenset({KEY})),
        Limits(),
    )
    collector = app.state.collector

    def basic(user: str, password: str) -> str:
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    for n in range(ACCEPTED_HEADERS + 10):  # Segment's clients may send any password
        collector._segment_auth(basic(KEY, f"p{n}"))
    for n in range(ACCEPTED_HEADERS + 10):  # remembered or not, each is still accepted
        collector._segment_auth(basic(KEY, f"p{n}"))
    for refused in (basic("other", ""), basic("other", ""), "Bearer x", None):
        with pytest.raises(Refused):
            collector._segment_auth(refused)
    assert len(collector._accepted_headers) == ACCEPTED_HEADERS
    assert basic("other", "") not in collector._accepted_headers
