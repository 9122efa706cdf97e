"""A landing call becomes visible all at once: killed or failed mid-way, it shows nothing, and
what it left is removed by the next ingest or load; a rerun lands everything exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from nudge.core.landing.loader import load_new_files
from nudge.core.landing.messages import normalise_message
from nudge.core.landing.staging import STAGING_DIR, staged_parts
from nudge.core.landing.writer import (
    LANDING_SCHEMA,
    ingest_ndjson,
    land_messages,
    landing_file_name,
)
from nudge.core.warehouse.connection import connect
from tests.conftest import AT_A_TERMINAL

ROWS_PER_FILE = 10

INGEST = """
import sys
from pathlib import Path
from nudge.core.landing.writer import ingest_ndjson
ingest_ndjson(Path(sys.argv[1]), Path(sys.argv[2]), rows_per_file=int(sys.argv[3]))
"""


def line(number: int) -> bytes:
    message = {"type": "track", "userId": "u1", "event": "x", "messageId": f"m-{number:03d}"}
    return json.dumps(message).encode() + b"\n"


def staging_folders(landing: Path) -> list[Path]:
    return [p for p in (landing / STAGING_DIR).iterdir() if p.is_dir()]


def loaded_ids(warehouse: Path, landing: Path) -> list[str]:
    with connect(warehouse) as con:
        load_new_files(con, landing)
        return [
            i for (i,) in con.execute("select message_id from raw.events order by 1").fetchall()
        ]


def open_write_end(source: Path, reader: subprocess.Popen[Any], deadline: float) -> int:
    """The write end of the pipe ``source``, once ``reader`` has opened it to read (opening a
    pipe's write end waits for a reader: never block on it)."""
    while True:
        try:
            return os.open(source, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            assert reader.poll() is None and time.monotonic() < deadline, "no reader"
            time.sleep(0.05)


def kill_after_two_parts(landing: Path, source: Path) -> None:
    """Ingest from a pipe fed 2.5 parts of lines, SIGKILL the writer once its second part is on
    disk (it then waits for more lines), and close the pipe."""
    os.mkfifo(source)
    writer = subprocess.Popen(
        [sys.executable, "-c", INGEST, str(landing), str(source), str(ROWS_PER_FILE)]
    )
    deadline = time.monotonic() + 60
    try:
        pipe = open_write_end(source, writer, deadline)
        os.write(pipe, b"".join(line(n) for n in range(25)))  # fits the pipe's buffer
        while not (landing.is_dir() and list(landing.glob(".staging/*/part-00001.parquet"))):
            assert writer.poll() is None and time.monotonic() < deadline, "no second part"
            time.sleep(0.05)
        writer.send_signal(signal.SIGKILL)
        assert writer.wait(timeout=60) == -signal.SIGKILL
        os.close(pipe)
    finally:
        writer.kill()
        writer.wait()


@pytest.mark.parametrize("next_step", ["load", "ingest"])
def test_a_killed_ingest_shows_nothing_is_cleaned_up_and_a_rerun_lands_once(
    tmp_path: Path, next_step: str
) -> None:
    landing, warehouse = tmp_path / "landing", tmp_path / "warehouse.duckdb"
    kill_after_two_parts(landing, tmp_path / "pipe.ndjson")
    [left] = staging_folders(landing)
    assert len(list(left.glob("*.parquet"))) >= 2
    assert list(landing.glob("*.parquet")) == []  # what the Dagster sensor lists

    complete = tmp_path / "events.ndjson"
    complete.write_bytes(b"".join(line(n) for n in range(35)))
    if next_step == "load":
        assert loaded_ids(warehouse, landing) == []
        assert staging_folders(landing) == []
        ingest_ndjson(landing, complete, rows_per_file=ROWS_PER_FILE)
    else:
        result = ingest_ndjson(landing, complete, rows_per_file=ROWS_PER_FILE)
        assert staging_folders(landing) == []
        assert [p.parent.parent for p in result.files] == [landing] * 4
    assert loaded_ids(warehouse, landing) == [f"m-{n:03d}" for n in range(35)]
    assert loaded_ids(warehouse, landing) == [f"m-{n:03d}" for n in range(35)]


def test_a_failed_call_shows_nothing_and_leaves_nothing(tmp_path: Path) -> None:
    def messages() -> Iterator[dict[str, Any]]:
        for number in range(25):
            yield json.loads(line(number))
        raise RuntimeError("the source broke")

    with pytest.raises(RuntimeError, match="the source broke"):
        land_messages(tmp_path, messages(), rows_per_file=ROWS_PER_FILE)
    assert list(tmp_path.rglob("*.parquet")) == []  # none published, none left staged


def test_the_loader_leaves_a_live_writers_staging_alone(tmp_path: Path) -> None:
    landing, warehouse = tmp_path / "landing", tmp_path / "warehouse.duckdb"
    landing.mkdir()
    row = normalise_message(json.loads(line(0)), datetime(2026, 1, 1))
    with staged_parts(landing) as staged:
        staged.write(pa.Table.from_pylist([row], schema=LANDING_SCHEMA))
        assert loaded_ids(warehouse, landing) == []
        assert [p.name for p in staged.staging.iterdir()] == ["part-00000.parquet"]
        [published] = staged.publish(landing_file_name())
    assert staging_folders(landing) == [] and published.parent == landing
    assert loaded_ids(warehouse, landing) == ["m-000"]


def test_ctrl_c_during_ingest_lands_the_finished_files_only_and_dies_of_sigint(
    tmp_path: Path,
) -> None:
    """`nudge ingest FIRST PIPE` interrupted while it reads the pipe: one line on stderr, no
    traceback, death by SIGINT (a shell's loop stops); FIRST landed, nothing of PIPE did, and an
    ingest of the whole of PIPE's input afterwards lands each of its messages once."""
    first, pipe_path = tmp_path / "first.ndjson", tmp_path / "events.ndjson"
    first.write_bytes(line(0))
    os.mkfifo(pipe_path)
    env = {**os.environ, "NUDGE_HOME": str(tmp_path / "home")}
    landing, warehouse = tmp_path / "home" / "landing" / "events", tmp_path / "warehouse.duckdb"
    ingest = subprocess.Popen(
        [sys.executable, "-m", "nudge.cli", "ingest", str(first), str(pipe_path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **AT_A_TERMINAL,
    )
    deadline = time.monotonic() + 60
    pipe = None
    try:
        pipe = open_write_end(pipe_path, ingest, deadline)  # FIRST landed, the pipe is read
        os.write(pipe, b"".join(line(n) for n in range(1, 6)))
        wchan = Path(f"/proc/{ingest.pid}/wchan")
        while "pipe_read" not in wchan.read_text():  # read them, waits for more
            assert ingest.poll() is None and time.monotonic() < deadline, "never waited"
            if wchan.read_text() == "0":  # a kernel that hides it: give the ingest a second
                time.sleep(1)
                break
            time.sleep(0.05)
        os.killpg(ingest.pid, signal.SIGINT)
        out, err = ingest.communicate(timeout=60)
    finally:
        ingest.kill()
        if pipe is not None:
            os.close(pipe)
    assert ingest.returncode == -signal.SIGINT, out + err
    assert out.splitlines() == [f"{first}: 1 accepted, 0 rejected"]
    assert err.splitlines() == ["interrupted (Ctrl-C)."]
    assert loaded_ids(warehouse, landing) == ["m-000"]

    again = tmp_path / "again.ndjson"
    again.write_bytes(b"".join(line(n) for n in range(1, 6)))
    subprocess.run(
        [sys.executable, "-m", "nudge.cli", "ingest", str(again)], env=env, check=True, timeout=120
    )
    assert loaded_ids(warehouse, landing) == [f"m-{n:03d}" for n in range(6)]
