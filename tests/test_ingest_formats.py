"""`nudge ingest` of NDJSON, JSON arrays, CSV identifies and folders, run as a real process."""

from __future__ import annotations

import codecs
import json
import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from nudge.core.landing.inputs import input_file, items
from nudge.core.landing.loader import load_new_files
from nudge.core.landing.messages import InvalidMessage
from nudge.core.landing.suppressions import SuppressionList


def nudge(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nudge.cli", *args],
        env={**os.environ, "NUDGE_HOME": str(home), "NUDGE_CONTENT": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def landed(home: Path, database: Path) -> list[tuple[str, str | None, str | None]]:
    with duckdb.connect(str(database)) as con:
        load_new_files(con, home / "landing" / "events")
        return con.execute(
            "select type, user_id, coalesce(event, cast(traits as varchar)) from raw.events order by 1, 2, 3"
        ).fetchall()


def test_every_format_in_a_folder_lands_and_bad_parts_reject_only_themselves(
    tmp_path: Path,
) -> None:
    home, inputs = tmp_path / "home", tmp_path / "in"
    inputs.mkdir()
    track = {"type": "track", "userId": "u1", "event": "A"}
    (inputs / "a.ndjson").write_bytes(
        codecs.BOM_UTF8
        + json.dumps(track).encode()
        + b"\n"
        + b'{"type": "track", "userId": "u\xff", "event": "B"}\n'
        + json.dumps({**track, "event": "C"}).encode()
        + b"\n"
    )
    (inputs / "b.json").write_text(json.dumps([{**track, "event": "D"}, {"type": "track"}]))
    (inputs / "c.csv").write_bytes(
        codecs.BOM_UTF8
        + b"user_id,plan,email\n"
        + b"u2,pro,u2@example.com\n"
        + b"u3,fr\xe9e,u3@example.com\n"
        + b"u4,free\n"
    )
    (inputs / "d.ndjson").write_text(json.dumps({**track, "userId": "gone", "event": "E"}) + "\n")
    SuppressionList(home / "suppressions.json").add(["gone"])

    result = nudge(home, "ingest", str(inputs))
    assert result.returncode == 1
    assert f"{inputs / 'a.ndjson'}: 2 accepted, 1 rejected" in result.stdout
    assert "line 2: not UTF-8 (byte 0xff at byte 31 of the line)" in result.stderr
    assert f"{inputs / 'b.json'}: 1 accepted, 1 rejected" in result.stdout
    assert "item 2: track needs userId or anonymousId" in result.stderr
    assert f"{inputs / 'c.csv'}: 1 accepted, 2 rejected" in result.stdout
    assert "line 3: not UTF-8 (in column plan)" in result.stderr
    assert "line 4: 2 cells where the header has 3" in result.stderr
    assert f"{inputs / 'd.ndjson'}: 0 accepted, 0 rejected, 1 dropped (suppressed)" in (
        result.stdout
    )
    assert "4 files: 4 accepted, 4 rejected, 1 dropped (suppressed)" in result.stdout
    assert "Traceback" not in result.stderr

    rows = landed(home, tmp_path / "w.duckdb")
    assert rows == [
        ("identify", "u2", '{"email":"u2@example.com","plan":"pro"}'),
        ("track", "u1", "A"),
        ("track", "u1", "C"),
        ("track", "u1", "D"),
    ]
    listed = nudge(home, "quarantine", "list")
    assert "4 quarantined" in listed.stdout


def test_a_whole_file_that_cannot_be_read_says_why(tmp_path: Path) -> None:
    home = tmp_path / "home"
    bad_json = tmp_path / "broken.json"
    bad_json.write_text('[{"type": "track",')
    no_user = tmp_path / "people.csv"
    no_user.write_text("email,plan\na@b.c,pro\n")
    result = nudge(home, "ingest", str(bad_json), str(no_user))
    assert result.returncode == 1
    assert f"{bad_json}: nothing landed: {bad_json} is not JSON" in result.stderr
    assert "names no user_id column (it has email, plan)" in result.stderr
    assert "Traceback" not in result.stderr
    assert Counter(landed(home, tmp_path / "w.duckdb")) == Counter()


def test_a_folder_with_nothing_to_ingest_says_so(tmp_path: Path) -> None:
    empty = tmp_path / "exports"
    empty.mkdir()
    (empty / ".hidden.json").write_text("[]")
    result = nudge(tmp_path / "home", "ingest", str(empty))
    assert result.returncode == 1
    assert f"{empty}: no file to ingest in this folder" in result.stderr


def test_a_json_array_is_read_item_by_item_not_whole(tmp_path: Path) -> None:
    """The first message of a JSON array comes out while the rest is still being written (a
    named pipe stands for a file larger than memory), and a break later says which item."""
    pipe = tmp_path / "events.json"
    os.mkfifo(pipe)
    first_read = threading.Event()
    closed = threading.Event()

    def write() -> None:
        with open(pipe, "w") as writer:
            writer.write('[{"type": "track", "userId": "u1", "event": "A"},' + " " * 70_000)
            writer.flush()
            first_read.wait(timeout=20)
            writer.write('{"type": "track", "userId": "u1", "event": "B"}, {"type": ')
        closed.set()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        messages = items(input_file(pipe))
        assert next(messages) == (1, {"type": "track", "userId": "u1", "event": "A"})
        assert not closed.is_set()  # read before the writer was done
        first_read.set()
        assert next(messages)[0] == 2
        with pytest.raises(InvalidMessage, match=r"is not JSON: .* \(after item 2\)"):
            next(messages)
    finally:
        first_read.set()
        writer.join()
