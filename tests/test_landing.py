"""Landing: message validation, atomic parquet files, NDJSON ingest and the incremental loader."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from nudge.core.landing.loader import load_new_files
from nudge.core.landing.messages import InvalidMessage, normalise_message
from nudge.core.landing.staging import STAGING_DIR
from nudge.core.landing.writer import ingest_ndjson, land_messages
from nudge.core.warehouse.connection import connect

RECEIVED = datetime(2026, 1, 1, 12, 0, 0)
FILE_NAME = re.compile(r"\d{8}T\d{12}-[0-9a-f]{32}\.parquet")


def track(**fields: Any) -> dict[str, Any]:
    return {"type": "track", "userId": "u1", "event": "signed_up", **fields}


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ({"userId": "u1", "event": "x"}, "missing type"),
        ({"type": "purchase", "userId": "u1"}, "unknown type 'purchase'"),
        ({"type": "track", "event": "x"}, "track needs userId or anonymousId"),
        (
            {"type": "identify", "userId": "", "anonymousId": None},
            "identify needs userId or anonymousId",
        ),
        ({"type": "track", "userId": "u1"}, "track without event"),
        ({"type": "alias", "userId": "u1"}, "alias needs both previousId and userId"),
        (
            {"type": "alias", "previousId": "a1", "anonymousId": "a1"},
            "alias needs both previousId and userId",
        ),
        ({"type": "delete", "anonymousId": "a1"}, "delete needs userId"),
        ({"type": "group", "userId": "u1"}, "group without groupId"),
        (track(timestamp="last tuesday"), "timestamp is not an ISO 8601 timestamp: 'last tuesday'"),
        (
            track(originalTimestamp=True),
            "originalTimestamp must be an ISO 8601 string or unix seconds",
        ),
        (track(properties=[1, 2]), "properties must be a JSON object, got list"),
        (
            {"type": "identify", "userId": "u1", "traits": "vip"},
            "traits must be a JSON object, got str",
        ),
        (
            {"type": "identify", "userId": "u1", "context": {"traits": 3}},
            "context.traits must be a JSON object",
        ),
        (track(userId={"id": 1}), "userId must be a string, got dict"),
        (track(properties={"blob": "x" * 33_000}), "over the 32 KB limit"),
        (["not", "an", "object"], "message must be a JSON object, got list"),
    ],
)
def test_invalid_messages_say_why(message: Any, reason: str) -> None:
    with pytest.raises(InvalidMessage) as raised:
        normalise_message(message, RECEIVED)
    assert reason in raised.value.reason


def test_timestamps_become_naive_utc() -> None:
    offset = normalise_message(track(timestamp="2026-01-01T02:00:00+02:00"), RECEIVED)
    zulu = normalise_message(track(timestamp="2026-01-01T00:00:00Z"), RECEIVED)
    unix = normalise_message(track(timestamp=1767225600), RECEIVED)
    fallback = normalise_message(track(originalTimestamp="2026-01-01T00:00:00.5Z"), RECEIVED)
    missing = normalise_message(track(), RECEIVED.replace(tzinfo=UTC) + timedelta(hours=1))
    assert offset["timestamp"] == zulu["timestamp"] == unix["timestamp"] == datetime(2026, 1, 1)
    assert fallback["timestamp"] == datetime(2026, 1, 1, 0, 0, 0, 500_000)
    assert missing["timestamp"] == missing["received_at"] == datetime(2026, 1, 1, 13, 0)
    assert missing["timestamp"].tzinfo is None


def test_row_fields_by_type() -> None:
    row = normalise_message(
        {
            "type": "identify",
            "userId": 42,
            "anonymousId": "a1",
            "context": {"traits": {"email": "a@example.com"}, "ip": "127.0.0.1"},
            "event": "ignored for identify",
            "at": "+3s",
        },
        RECEIVED,
    )
    assert row["user_id"] == "42"
    assert json.loads(row["traits"]) == {"email": "a@example.com"}
    assert row["event"] is None and row["properties"] is None
    assert json.loads(row["context"])["ip"] == "127.0.0.1"
    page = normalise_message({"type": "page", "anonymousId": "a1", "name": "pricing"}, RECEIVED)
    assert page["name"] == "pricing" and page["event"] is None and page["traits"] is None


def test_missing_message_id_is_deterministic() -> None:
    first = normalise_message(track(properties={"b": 1, "a": 2}), RECEIVED)
    again = normalise_message(track(properties={"a": 2, "b": 1}), RECEIVED + timedelta(days=1))
    other = normalise_message(track(properties={"a": 3}), RECEIVED)
    assert first["message_id"] == again["message_id"] != other["message_id"]
    assert normalise_message(track(messageId="m-1"), RECEIVED)["message_id"] == "m-1"


def test_stored_json_is_canonical_for_every_value_json_can_hold() -> None:
    row = normalise_message(
        track(
            properties={
                "z": "naïve ✓",
                "at": datetime(2026, 1, 2, 3, 4, 5),
                "nested": {"b": [1.5, None, True], "a": 10},
            }
        ),
        RECEIVED,
    )
    # Sorted keys, no spaces, non-ASCII as is, a datetime as str(): the same text whatever the
    # key order, so the fallback message id is stable.
    assert row["properties"] == (
        '{"at":"2026-01-02 03:04:05","nested":{"a":10,"b":[1.5,null,true]},"z":"naïve ✓"}'
    )
    big = normalise_message(track(properties={"n": 123456789012345678901234567890}), RECEIVED)
    assert big["properties"] == '{"n":123456789012345678901234567890}'
    not_json = normalise_message(track(properties={"x": float("nan")}), RECEIVED)
    assert json.loads(not_json["properties"]) == {"x": None}


def test_text_that_is_not_unicode_rejects_only_its_message(tmp_path: Path) -> None:
    source = tmp_path / "events.ndjson"
    source.write_text(
        "\n".join(
            [
                json.dumps(track(messageId="m-1")),
                '{"type": "track", "userId": "u1", "event": "x", "messageId": "m-2", '
                '"properties": {"name": "\\ud800"}}',
                json.dumps(track(messageId="m-3")),
            ]
        )
    )
    result = ingest_ndjson(tmp_path / "landing", source)
    assert result.accepted == 2
    assert [(r.index, r.message_id) for r in result.rejected] == [(2, "m-2")]
    assert "not valid Unicode" in result.rejected[0].reason


def test_batch_keeps_valid_messages_around_a_bad_one(tmp_path: Path) -> None:
    result = land_messages(
        tmp_path,
        [track(messageId="m-0"), track(messageId="m-bad", event=None), track(messageId="m-2")],
        received_at=RECEIVED,
    )
    assert result.accepted == 2
    assert [(r.index, r.message_id, r.reason) for r in result.rejected] == [
        (1, "m-bad", "track without event")
    ]
    assert len(result.files) == 1
    table = pq.read_table(result.files[0])
    assert table.column("message_id").to_pylist() == ["m-0", "m-2"]
    assert table.schema.field("timestamp").type.unit == "us"


def test_landing_files_are_named_and_renamed_into_place(tmp_path: Path) -> None:
    first = land_messages(tmp_path, [track()])
    second = land_messages(tmp_path, [track(event="other")])
    names = [p.name for p in (*first.files, *second.files)]
    assert all(FILE_NAME.fullmatch(name) for name in names)
    assert sorted(names) == names  # sortable by landing time
    # Nothing but the finished files is left behind (the staging area holds only the lock).
    assert sorted(p.name for p in tmp_path.iterdir()) == [STAGING_DIR, *names]
    assert [p.name for p in (tmp_path / STAGING_DIR).iterdir()] == ["lock"]


def test_nothing_valid_writes_no_file(tmp_path: Path) -> None:
    result = land_messages(tmp_path, [{"type": "track"}])
    assert result.accepted == 0 and result.files == [] and list(tmp_path.iterdir()) == []


def test_ndjson_bad_line_is_rejected_with_its_line_number(tmp_path: Path) -> None:
    source = tmp_path / "events.ndjson"
    source.write_text(
        "\n".join(
            [
                json.dumps(track(messageId="m-1")),
                "{not json",
                "",
                json.dumps({"type": "track", "userId": "u1", "messageId": "m-4"}),
                json.dumps(track(messageId="m-5")),
            ]
        )
    )
    result = ingest_ndjson(tmp_path / "landing", source)
    assert result.accepted == 2
    assert [(r.index, r.message_id) for r in result.rejected] == [(2, None), (4, "m-4")]
    assert result.rejected[0].reason.startswith("not JSON: Expecting property name")
    assert result.rejected[1].reason == "track without event"


def test_loader_is_incremental(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    land_messages(landing, [track(messageId="m-1"), track(messageId="m-2")])
    (landing / "nested").mkdir()
    land_messages(landing / "nested", [track(messageId="m-3")])
    with connect(tmp_path / "warehouse.duckdb") as con:
        first = load_new_files(con, landing)
        second = load_new_files(con, landing)
        land_messages(landing, [track(messageId="m-4", timestamp="2026-01-01T01:00:00+01:00")])
        third = load_new_files(con, landing)
        rows = con.execute(
            "select message_id, timestamp, landing_file from raw.events order by message_id"
        ).fetchall()
        files = con.execute("select file_name, rows from raw.loaded_files order by all").fetchall()
    assert (first.files, first.rows) == (2, 3)
    assert (second.files, second.rows) == (0, 0)
    assert (third.files, third.rows) == (1, 1)
    assert [r[0] for r in rows] == ["m-1", "m-2", "m-3", "m-4"]
    assert rows[3][1] == datetime(2026, 1, 1)
    assert any(r[2].startswith("nested/") for r in rows)
    assert sorted(r for _, r in files) == [1, 1, 2]


def test_loader_ignores_unfinished_files_and_removes_those_of_earlier_versions(
    tmp_path: Path,
) -> None:
    left = tmp_path / "nested" / ".20260101T000000000000-abc.parquet.tmp"
    left.parent.mkdir()
    left.write_bytes(b"partial")
    with connect(tmp_path / "warehouse.duckdb") as con:
        assert load_new_files(con, tmp_path).files == 0
    assert not left.exists()


def test_aware_received_at_is_stored_as_utc(tmp_path: Path) -> None:
    received = datetime(2026, 1, 1, 3, 0, tzinfo=timezone(timedelta(hours=3)))
    result = land_messages(tmp_path, [track()], received_at=received)
    table = pq.read_table(result.files[0])
    assert table.column("received_at").to_pylist() == [datetime(2026, 1, 1)]


def test_large_inputs_are_split_into_several_files_published_as_one_folder(
    tmp_path: Path,
) -> None:
    result = land_messages(tmp_path, (track(messageId=f"m-{i}") for i in range(5)), rows_per_file=2)
    assert result.accepted == 5
    assert [pq.read_metadata(path).num_rows for path in result.files] == [2, 2, 1]
    # The parts share one folder named like a landing file, renamed into place as a whole.
    folder = result.files[0].parent
    assert FILE_NAME.fullmatch(folder.name) and folder.parent == tmp_path
    assert [p.name for p in result.files] == [f"part-0000{i}.parquet" for i in range(3)]
    assert sorted(p.name for p in tmp_path.iterdir()) == [STAGING_DIR, folder.name]
    assert list(tmp_path.glob("*.parquet")) == [folder]  # what the Dagster sensor lists
