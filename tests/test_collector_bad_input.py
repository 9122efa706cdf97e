"""Bad requests get a clear 4xx, a bad message rejects only itself and is kept in quarantine."""

from __future__ import annotations

import gzip
import json
import os
import select
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.conftest import COLLECTOR_ENV, CollectorProcess
from tests.test_collector_durability import loaded_ids

AUTH = ("test-write-key", "")
TRACK_AUTH = ("site", "api-key")


def post(collector: CollectorProcess, path: str, **kwargs: object) -> requests.Response:
    kwargs.setdefault("auth", AUTH)
    return requests.post(f"{collector.url}{path}", timeout=10, **kwargs)  # type: ignore[arg-type]


def quarantine(collector: CollectorProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nudge.cli", "quarantine", *args],
        env={"NUDGE_HOME": str(collector.home), "NUDGE_CONTENT": str(collector.content)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_bad_message_rejects_only_itself_is_quarantined_and_replays_after_a_fix(
    collector: CollectorProcess, tmp_path: Path
) -> None:
    batch = [
        {"type": "track", "userId": "u1", "event": "Good", "messageId": "m0"},
        {"type": "track", "userId": "u1", "messageId": "m1"},
        {"type": "identify", "messageId": "m2", "traits": {"plan": "pro"}},
        {"type": "track", "userId": "u1", "event": "Big", "properties": {"x": "y" * 40_000}},
        {"type": "track", "userId": "u1", "event": "Late", "timestamp": "yesterday"},
        "not an object",
    ]
    answer = post(collector, "/v1/batch", json={"batch": batch})
    assert answer.status_code == 200
    body = answer.json()
    assert body["accepted"] == 1
    assert [(r["index"], r["messageId"]) for r in body["rejected"]] == [
        (1, "m1"),
        (2, "m2"),
        (3, None),
        (4, None),
        (5, None),
    ]
    reasons = [r["reason"] for r in body["rejected"]]
    assert reasons[0] == "track without event"
    assert reasons[1] == "identify needs userId or anonymousId (neither is set)"
    assert "over the 32 KB limit" in reasons[2]
    assert reasons[3] == "timestamp is not an ISO 8601 timestamp: 'yesterday'"
    assert reasons[4] == "message must be a JSON object, got str"

    listed = quarantine(collector, "list")
    assert listed.returncode == 0, listed.stderr
    assert "5 quarantined" in listed.stdout
    assert "POST /v1/batch  track without event" in listed.stdout

    # The operator fixes the entry missing its event and replays: it lands, the rest stay.
    [kept] = (collector.home / "quarantine").glob("*.ndjson")
    records = [json.loads(line) for line in kept.read_text().splitlines()]
    records[0]["message"]["event"] = "Fixed"
    kept.write_text("".join(json.dumps(r) + "\n" for r in records))
    replayed = quarantine(collector, "replay")
    assert "1 landed, 0 dropped (suppressed), 4 still rejected" in replayed.stdout
    assert replayed.returncode == 1
    assert "4 quarantined" in quarantine(collector, "list").stdout

    collector.stop()
    assert set(loaded_ids(collector.home / "landing" / "events", tmp_path / "w.duckdb")) == {
        "m0",
        "m1",
    }


def test_unreadable_requests_get_a_clear_4xx(collector: CollectorProcess) -> None:
    track = {"type": "track", "userId": "u1", "event": "e"}
    cases = [
        (post(collector, "/v1/batch", data=b'{"batch": [', headers=_json), 400, "not JSON"),
        (post(collector, "/v1/track", data=b"\xff\xfe", headers=_json), 400, "not JSON"),
        (post(collector, "/v1/batch", json=[track]), 400, "with a batch array"),
        (post(collector, "/v1/track", data={"a": "b"}), 415, "must be JSON"),
        (post(collector, "/v1/track", json=track, auth=None), 401, "missing credentials"),
        (post(collector, "/v1/track", json=track, auth=("nope", "")), 401, "unknown write key"),
        (post(collector, "/v1/track", json=track, auth=TRACK_AUTH), 401, "unknown write key"),
        (post(collector, "/v1/track", json={**track, "type": "page"}), 400, "sent to /v1/track"),
        (
            requests.put(
                f"{collector.url}/api/v1/customers/u1", json={}, auth=("site", "x"), timeout=10
            ),
            401,
            "unknown site_id or api_key",
        ),
        (
            post(collector, "/v1/batch", data=b"x" * 600_000, headers=_json),
            413,
            "over the limit",
        ),
        (
            post(
                collector,
                "/v1/batch",
                data=gzip.compress(b" " * 2_000_000),
                headers={**_json, "Content-Encoding": "gzip"},
            ),
            413,
            "once decompressed",
        ),
        (
            post(
                collector,
                "/v1/batch",
                data=gzip.compress(json.dumps({"batch": [track]}).encode())[:-6],
                headers={**_json, "Content-Encoding": "gzip"},
            ),
            400,
            "truncated",
        ),
        (
            post(collector, "/v1/track", json=track, headers={"Content-Encoding": "br"}),
            415,
            "Content-Encoding br",
        ),
    ]
    for answer, status, words in cases:
        body = answer.json()
        error = body["meta"]["error"] if "meta" in body else body["error"]
        assert (answer.status_code, words in error) == (status, True), (
            answer.request.url,
            answer.text,
        )
    assert requests.get(f"{collector.url}/health", timeout=10).ok


_json = {"Content-Type": "application/json"}


def test_customerio_limits_and_shapes_are_checked(collector: CollectorProcess) -> None:
    url = f"{collector.url}/api/v1"
    cases = [
        ("PUT", "/customers/u1", {"plan": "x" * 1001}, "over Customer.io's limit of 1000"),
        ("PUT", "/customers/u1", {f"a{i}": i for i in range(301)}, "301 attributes"),
        ("PUT", "/customers/u1", ["not", "an", "object"], "must be a JSON object"),
        ("PUT", f"/customers/{'u' * 151}", {}, "longer than 150 bytes"),
        ("POST", "/customers/u1/events", {"data": {}}, "the event needs a name"),
        ("POST", "/customers/u1/events", {"name": "n" * 101}, "longer than 100 bytes"),
        ("POST", "/events", {"name": "Viewed"}, "needs userId or anonymousId"),
        ("PUT", "/customers/u1/devices", {"device": {"id": "t"}}, "must be ios or android"),
        ("POST", "/merge_customers", {"primary": {"id": "a"}}, "secondary must name"),
        ("POST", "/merge_customers", {"primary": {"id": "a"}, "secondary": {"id": "a"}}, "same"),
    ]
    for method, path, body, words in cases:
        answer = requests.request(method, url + path, json=body, auth=TRACK_AUTH, timeout=10)
        assert answer.status_code == 400, (path, answer.text)
        assert words in answer.json()["meta"]["error"], (path, answer.text)


def test_no_credentials_configured_means_no_data_accepted(tmp_path: Path) -> None:
    server = CollectorProcess(tmp_path / "home", tmp_path / "content", {})
    server.start()
    try:
        track = {"type": "track", "userId": "u1", "event": "e"}
        answer = post(server, "/v1/track", json=track)
        assert answer.status_code == 403
        assert "NUDGE_WRITE_KEYS is not set" in answer.json()["error"]
        answer = requests.delete(f"{server.url}/api/v1/customers/u1", auth=TRACK_AUTH, timeout=10)
        assert answer.status_code == 403
        assert "NUDGE_TRACK_CREDENTIALS is not set" in answer.json()["meta"]["error"]
    finally:
        server.stop()


def test_a_slow_or_truncated_body_gets_408_or_is_dropped_and_the_collector_goes_on(
    tmp_path: Path,
) -> None:
    server = CollectorProcess(
        tmp_path / "home",
        tmp_path / "content",
        {**COLLECTOR_ENV, "NUDGE_COLLECTOR_BODY_SECONDS": "1"},
    )
    server.start()
    try:
        head = (
            "POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Authorization: Basic dGVzdC13cml0ZS1rZXk6\r\nContent-Length: 100\r\n\r\n"
        )
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as slow:
            slow.sendall(head.encode() + b'{"type": ')
            answer = ""
            while not answer.endswith("}") and (part := slow.recv(4096).decode()):
                answer += part
        assert answer.startswith("HTTP/1.1 408"), answer
        assert "did not arrive within 1 seconds" in answer
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as truncated:
            truncated.sendall(head.encode() + b'{"type": ')
        assert requests.get(f"{server.url}/health", timeout=10).ok
    finally:
        output = server.stop(signal.SIGTERM)
    assert "Traceback" not in output, output


@pytest.mark.parametrize("path", ["/v1/nope", "/api/v1/customers"])
def test_unknown_paths_are_404(collector: CollectorProcess, path: str) -> None:
    assert post(collector, path, json={}).status_code in (404, 405)


@pytest.mark.slow  # the second one waits 10 s for the journal (a loader holds it only briefly)
def test_a_second_collector_on_the_same_workspace_says_so(
    collector: CollectorProcess, tmp_path: Path
) -> None:
    second = subprocess.run(
        [sys.executable, "-m", "nudge.cli", "serve", "--port", "1"],
        env={
            **os.environ,
            **COLLECTOR_ENV,
            "NUDGE_HOME": str(collector.home),
            "NUDGE_CONTENT": str(collector.content),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 2
    assert "another collector is writing into" in second.stderr
    assert "Traceback" not in second.stdout + second.stderr


def test_the_served_openapi_description_covers_every_route(collector: CollectorProcess) -> None:
    from starlette.routing import Mount

    from collector.app import create_app
    from collector.subscription_centre import SubscriptionCentre
    from nudge.core.checked_content import WatchedContent
    from nudge.core.workspace import Workspace

    served = requests.get(f"{collector.url}/openapi.json", timeout=10).json()
    workspace = Workspace(collector.home, collector.content)
    app = create_app(workspace)
    pages = {r.path for r in SubscriptionCentre(workspace, WatchedContent(workspace)).routes()}
    mounted = [(m.path + r.path, r) for m in app.routes if isinstance(m, Mount) for r in m.routes]
    routes = {
        (path, m.lower())
        for path, r in [(r.path, r) for r in app.routes if not isinstance(r, Mount)] + mounted
        for m in r.methods
        if m != "HEAD" and path not in pages  # HTML pages, not part of the API
    }
    assert pages <= {r.path for r in app.routes}  # nudge serve serves them too
    described = {(p, m) for p, ops in served["paths"].items() for m in ops if m != "parameters"}
    assert described == routes


def test_a_client_sending_its_headers_a_byte_at_a_time_is_cut_off_and_others_served(
    tmp_path: Path,
) -> None:
    env = {**COLLECTOR_ENV, "NUDGE_COLLECTOR_HEADER_SECONDS": "2"}
    server = CollectorProcess(tmp_path / "home", tmp_path / "content", env)
    server.start()
    try:
        head = (
            b"POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Basic dGVzdC13cml0ZS1rZXk6\r\nContent-Length: 2\r\n\r\n"
        )
        answer = b""
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as slow:
            # One byte every half second (a slowloris); the headers would take about 70 s.
            for sent, byte in enumerate(head, start=1):
                try:
                    slow.sendall(bytes([byte]))
                except (BrokenPipeError, ConnectionResetError):
                    break
                if select.select([slow], [], [], 0.5)[0]:
                    answer = slow.recv(4096)
                    break
                if sent % 4 == 0:  # other clients are served meanwhile
                    assert requests.get(f"{server.url}/health", timeout=10).ok
        assert sent < 24, "the slow client was not cut off"
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert b"headers did not arrive within 2 seconds" in answer
        track = {"type": "track", "userId": "u1", "event": "e"}
        assert post(server, "/v1/track", json=track).status_code == 200
    finally:
        output = server.stop(signal.SIGTERM)
    assert "Traceback" not in output, output
