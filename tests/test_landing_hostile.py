"""One hostile line or message never stops a landing call: it is rejected alone, saying why."""

from __future__ import annotations

import codecs
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from nudge.core.landing.loader import load_new_files
from nudge.core.landing.messages import MAX_NESTING, InvalidMessage, normalise_message
from nudge.core.landing.writer import MAX_LINE_BYTES, ingest_ndjson, land_messages
from nudge.core.warehouse.connection import connect

RECEIVED = datetime(2026, 1, 1, 12, 0, 0)


def track(message_id: str, **fields: Any) -> dict[str, Any]:
    return {"type": "track", "userId": "u1", "event": "x", "messageId": message_id, **fields}


def good(message_id: str) -> bytes:
    return json.dumps(track(message_id)).encode()


def nested(depth: int) -> Any:
    """``depth`` arrays one inside the other, built without recursion."""
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def track_line(**fields: str) -> bytes:
    """A track line whose fields are raw JSON text (to write what json.dumps would not)."""
    raw = ", ".join(f'"{name}": {text}' for name, text in fields.items())
    return b'{"type": "track", "userId": "u1", "event": "x", ' + raw.encode() + b"}"


# (line, the reason it is rejected), each placed between good lines.
HOSTILE_LINES: list[tuple[bytes, str]] = [
    (track_line(properties="[" * 10_000 + "]" * 10_000), "nested more than 254 levels deep"),
    (
        track_line(properties=json.dumps({"a": nested(MAX_NESTING)})),
        "nested more than 254 levels deep",
    ),
    (
        b'{"type": "track", "userId": "u\xff", "event": "x"}',
        "not UTF-8 (byte 0xff at byte 31 of the line",
    ),
    (
        track_line(timestamp='"0001-01-01T00:00:00+01:00"'),
        "timestamp 0001-01-01T00:00:00+01:00 is outside years 1 to 9999 in UTC",
    ),
    (
        track_line(originalTimestamp='"9999-12-31T23:59:59-01:00"'),
        "originalTimestamp 9999-12-31T23:59:59-01:00 is outside years 1 to 9999 in UTC",
    ),
    (track_line(timestamp="1e300"), "timestamp is out of range as unix seconds: 1e+300"),
    (track_line(sentAt="1" + "0" * 30), "sentAt is out of range as unix seconds"),
    (track_line(timestamp="NaN"), "timestamp is not a finite number: nan"),
    (track_line(properties='{"n": ' + "7" * 5000 + "}"), "integer of more than 4300 digits"),
    (track_line(properties='{"pad": "' + "x" * MAX_LINE_BYTES + '"}'), "line is longer than"),
]


def hostile_file(path: Path) -> list[tuple[int, str]]:
    """Write good and hostile lines (after a byte order mark); return (line, reason) expected."""
    lines = [codecs.BOM_UTF8 + good("m-0")]
    expected = []
    for number, (line, reason) in enumerate(HOSTILE_LINES, start=1):
        lines += [line, good(f"m-{number}")]
        expected.append((len(lines) - 1, reason))
    path.write_bytes(b"\n".join(lines) + b"\n")
    return expected


GOOD_IDS = [f"m-{number}" for number in range(len(HOSTILE_LINES) + 1)]


def test_each_hostile_line_is_rejected_alone_and_the_good_lines_load(tmp_path: Path) -> None:
    source = tmp_path / "events.ndjson"
    expected = hostile_file(source)
    result = ingest_ndjson(tmp_path / "landing", source)
    assert result.accepted == len(GOOD_IDS)
    assert [r.index for r in result.rejected] == [number for number, _ in expected]
    for rejection, (_, reason) in zip(result.rejected, expected, strict=True):
        assert reason in rejection.reason
        assert len(rejection.reason) < 200  # the offending value is quoted short, if at all
    with connect(tmp_path / "warehouse.duckdb") as con:
        assert load_new_files(con, tmp_path / "landing").rows == len(GOOD_IDS)
        ids = con.execute("select message_id from raw.events order by message_id").fetchall()
    assert sorted(i for (i,) in ids) == sorted(GOOD_IDS)


def test_hostile_lines_through_the_cli(tmp_path: Path) -> None:
    source = tmp_path / "in" / "events.ndjson"
    source.parent.mkdir()
    expected = hostile_file(source)
    (source.parent / "more.ndjson").write_bytes(good("m-more") + b"\n")
    home = tmp_path / "home"
    env = {**os.environ, "NUDGE_HOME": str(home), "NUDGE_CONTENT": str(tmp_path / "content")}
    done = subprocess.run(
        [sys.executable, "-m", "nudge.cli", "ingest", str(source.parent)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert f"{source}: {len(GOOD_IDS)} accepted, {len(expected)} rejected" in done.stdout
    assert f"{source.parent / 'more.ndjson'}: 1 accepted, 0 rejected" in done.stdout
    printed = dict(line.split(": ", 1) for line in done.stderr.splitlines())
    assert list(printed) == [f"  line {number}" for number, _ in expected]
    for number, reason in expected:
        assert reason in printed[f"  line {number}"]
    with connect(home / "warehouse.duckdb") as con:
        assert load_new_files(con, home / "landing" / "events").rows == len(GOOD_IDS) + 1


def cyclic() -> dict[str, Any]:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    return loop


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (track("deep", properties={"a": nested(10_000)}), "nested more than 254 levels deep"),
        (track("cycle", properties=cyclic()), "nested more than 254 levels deep"),
        (
            track("early", timestamp=datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))),
            "timestamp 0001-01-01T00:00:00+01:00 is outside years 1 to 9999 in UTC",
        ),
        (track("digits", properties={"n": 10**5000}), "integer of more than 4300 digits"),
        (
            track("keys", properties={(1, 2): "a", "n": 10**30}),
            "message holds an object key of type tuple",
        ),
        ({"type": "track", "userId": "u1", "messageId": 10**5000}, "more than 4300 digits"),
    ],
    ids=["deep", "cycle", "early", "digits", "tuple-key", "id-digits"],
)
def test_each_hostile_message_is_rejected_alone(
    tmp_path: Path, message: dict[str, Any], reason: str
) -> None:
    result = land_messages(tmp_path, [track("m-0"), message, track("m-2")], received_at=RECEIVED)
    assert result.accepted == 2
    assert [r.index for r in result.rejected] == [1]
    assert reason in result.rejected[0].reason


def test_the_nesting_limit_is_the_same_however_the_message_is_written() -> None:
    # A 30-digit integer makes orjson refuse the message, so it is written the other way.
    for big in ({}, {"big": 10**30}):
        at_limit = normalise_message(
            track("m", properties={"a": nested(MAX_NESTING - 2), **big}), RECEIVED
        )
        assert json.loads(at_limit["properties"])["a"] == nested(MAX_NESTING - 2)
        with pytest.raises(InvalidMessage, match="nested more than 254 levels deep"):
            normalise_message(
                track("m", properties={"a": nested(MAX_NESTING - 1), **big}), RECEIVED
            )


def test_a_long_integer_beside_nan_and_number_keys_is_stored_as_json() -> None:
    message = track("m", properties={"n": 10**30, "x": float("nan"), 1: "one"})
    row = normalise_message(message, RECEIVED)
    assert json.loads(row["properties"]) == {"1": "one", "n": 10**30, "x": None}
