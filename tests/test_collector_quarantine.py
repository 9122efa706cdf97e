"""The quarantine: replay holds a message to the limits of the API it came from, and the
folder has a cap beyond which rejected input is counted, not kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from tests.conftest import COLLECTOR_ENV, CollectorProcess, running_collector
from tests.test_collector_bad_input import TRACK_AUTH, post, quarantine
from tests.test_collector_durability import loaded_ids
from tests.test_ingest_formats import nudge

BIG_DATA = {"text": "y" * 60_000}  # over Segment's 32 KB, within Customer.io's limits


def test_a_track_api_message_replays_under_the_track_api_limit(
    collector: CollectorProcess, tmp_path: Path
) -> None:
    body = {"name": "Uploaded", "id": "big", "data": BIG_DATA, "timestamp": "yesterday"}
    answer = requests.post(
        f"{collector.url}/api/v1/customers/u1/events", json=body, auth=TRACK_AUTH, timeout=10
    )
    assert answer.status_code == 400
    assert "timestamp" in answer.json()["meta"]["error"]

    [kept] = (collector.home / "quarantine").glob("*.ndjson")
    [record] = [json.loads(line) for line in kept.read_text().splitlines()]
    assert record["api"] == "customerio"
    del record["message"]["timestamp"]  # the operator's fix
    kept.write_text(json.dumps(record) + "\n")
    replayed = quarantine(collector, "replay")
    assert "1 landed, 0 dropped (suppressed), 0 still rejected" in replayed.stdout, replayed

    collector.stop()
    landed = loaded_ids(collector.home / "landing" / "events", tmp_path / "w.duckdb")
    assert set(landed) == {"big"}


def test_ingest_holds_to_segment_limits_unless_told_customerio(tmp_path: Path) -> None:
    home = tmp_path / "home"
    message = {"type": "track", "userId": "u1", "event": "Uploaded", "properties": BIG_DATA}
    given = tmp_path / "big.ndjson"
    given.write_text(json.dumps({**message, "messageId": "m1"}) + "\n")

    as_segment = nudge(home, "ingest", str(given))
    assert as_segment.returncode == 1
    assert "line 1: message is" in as_segment.stderr
    assert "over the 32 KB limit" in as_segment.stderr
    # Replayed, the Segment message is held to Segment's limit still.
    replayed = nudge(home, "quarantine", "replay")
    assert "0 landed, 0 dropped (suppressed), 1 still rejected" in replayed.stdout
    # An entry that is not there (a typo) is said, and nothing is replayed.
    entry = nudge(home, "quarantine", "list").stdout.split()[0]  # the first entry's name
    typo = nudge(home, "quarantine", "replay", entry, "nosuch:1")
    assert typo.returncode == 2
    assert "no quarantine entry 'nosuch:1'; nothing was replayed" in typo.stderr
    assert "still rejected" not in typo.stdout

    as_customerio = nudge(home, "ingest", "--api", "customerio", str(given))
    assert as_customerio.returncode == 0, as_customerio.stderr
    assert "1 accepted, 0 rejected" in as_customerio.stdout
    landed = loaded_ids(home / "landing" / "events", tmp_path / "w.duckdb")
    assert set(landed) == {"m1"}


def test_over_its_cap_the_quarantine_counts_what_it_does_not_keep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NUDGE_QUARANTINE_MAX_BYTES", "2000")  # for `nudge ingest`
    env = {**COLLECTOR_ENV, "NUDGE_QUARANTINE_MAX_BYTES": "2000"}
    with running_collector(tmp_path / "home", tmp_path / "content", env) as server:
        batch = [{"type": "track", "userId": "u1", "messageId": f"m{i}"} for i in range(3)]
        batch.append({"type": "track", "userId": "u1", "event": "Good", "messageId": "ok"})
        answers = [post(server, "/v1/batch", json={"batch": batch}) for _ in range(20)]
        for answer in answers:  # every answer still says what was rejected and why
            assert answer.status_code == 200
            assert answer.json()["accepted"] == 1
            reasons = [r["reason"] for r in answer.json()["rejected"]]
            assert reasons == ["track without event"] * 3
        folder = server.home / "quarantine"
        assert sum(p.stat().st_size for p in folder.glob("*.ndjson")) <= 2000
        kept_files = len(list(folder.glob("*.ndjson")))
        assert 0 < kept_files < 20

        listed = quarantine(server, "list")
        assert f"{3 * kept_files} quarantined" in listed.stdout
        not_kept = 3 * (20 - kept_files)
        assert f"{not_kept} more rejected but not kept" in listed.stdout, listed.stdout

        given = tmp_path / "bad.ndjson"
        bad = {"type": "track", "userId": "u2", "properties": {"text": "y" * 2000}}
        given.write_text(json.dumps(bad) + "\n")  # more than the cap leaves room for
        ingested = nudge(server.home, "ingest", str(given))
        assert "1 rejected messages not kept: the quarantine is at its cap" in ingested.stdout
        assert f"{not_kept + 1} more rejected" in quarantine(server, "list").stdout


def test_drop_removes_named_entries_or_every_one_and_the_count_not_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    given = tmp_path / "bad.ndjson"
    given.write_text(
        "".join(json.dumps({"type": "track", "userId": f"u{i}"}) + "\n" for i in range(3))
    )
    assert nudge(home, "ingest", str(given)).returncode == 1
    folder = home / "quarantine"
    size = sum(p.stat().st_size for p in folder.glob("*.ndjson"))
    # Room for one file's rejections, not two: the second ingest's are counted, not kept.
    monkeypatch.setenv("NUDGE_QUARANTINE_MAX_BYTES", str(size * 3 // 2))
    assert "3 rejected messages not kept" in nudge(home, "ingest", str(given)).stdout

    def listed() -> str:
        return nudge(home, "quarantine", "list").stdout

    names = [
        line.split()[0]  # an entry's line, not its message's (indented)
        for line in listed().splitlines()
        if not line.startswith(" ") and ":" in line.split()[0]
    ]
    assert len(names) == 3 and "3 more rejected but not kept" in listed()

    neither = nudge(home, "quarantine", "drop")
    assert neither.returncode == 2
    assert "name the entries to drop" in neither.stderr
    typo = nudge(home, "quarantine", "drop", names[0], "nosuch:1")
    assert typo.returncode == 2
    assert "no quarantine entry 'nosuch:1'; nothing was dropped" in typo.stderr
    assert "3 quarantined" in listed()

    one = nudge(home, "quarantine", "drop", names[0])
    assert one.returncode == 0 and "1 dropped" in one.stdout
    left = listed()
    assert "2 quarantined" in left and '"u0"' not in left and '"u1"' in left and '"u2"' in left
    assert "3 more rejected but not kept" in left  # only --all resets the count

    every = nudge(home, "quarantine", "drop", "--all")
    assert every.returncode == 0 and "2 dropped, and the count of those not kept" in every.stdout
    assert listed().splitlines() == ["0 quarantined"]
    # The room is back: the same rejections are kept again.
    assert "not kept" not in nudge(home, "ingest", str(given)).stdout
    assert "3 quarantined" in listed()
