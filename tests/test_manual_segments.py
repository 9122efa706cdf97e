"""Manual segments: CSV uploads landed as data, loaded by the pipeline, usable like any segment."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from nudge.cli.main import main
from nudge.core.checked_content import load_workspace_content
from nudge.core.dsl.problems import DefinitionError
from nudge.core.dsl.spec import CHANNELS
from nudge.core.landing.writer import land_messages
from nudge.core.segments.manual import (
    ManualSegmentError,
    manual_segment_names,
    read_member_ids,
    upload_manual_segment,
)
from nudge.core.warehouse.connection import connect
from nudge.core.workspace import Workspace
from orchestration.stages import prepare_project, run_pipeline
from senders.capture import CapturingProvider

T0 = datetime(2026, 4, 1)
H = timedelta(hours=1)

CONTENT = """
segments:
  - name: active_vips
    condition:
      all:
        - in_segment: vips
        - performed: {event: logged_in}
templates:
  - {name: hello, channel: in_app, title: "Hi", body: "Welcome to the VIP list"}
journeys:
  - name: vip_welcome
    trigger: {segment_entered: vips}
    steps: [{id: hello, send: {channel: in_app, template: hello}}]
"""


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    content = tmp_path / "content"
    content.mkdir()
    (content / "defs.yml").write_text(CONTENT)
    return Workspace(home=tmp_path / "home", content_dir=content).ensure()


def test_csv_needs_a_user_id_column(tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "list.csv", "id,email\nu1,a@example.com\n")
    with pytest.raises(ManualSegmentError, match=r"no 'user_id' column.*found 'id', 'email'"):
        read_member_ids(csv)


def test_csv_empty_ids_are_named_by_line(tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "list.csv", "user_id,email\nu1,a\n,b\n  ,c\n")
    with pytest.raises(ManualSegmentError, match=r"empty user_id on lines 3, 4"):
        read_member_ids(csv)


def test_csv_with_a_quote_left_open_is_refused_not_read_as_one_id(tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "list.csv", 'user_id,email\n"u1,a\nu2,b\n')
    with pytest.raises(
        ManualSegmentError, match=r"list.csv: not a valid CSV file \(unexpected end"
    ):
        read_member_ids(csv)


def test_csv_not_in_utf8_is_named(tmp_path: Path) -> None:
    csv = tmp_path / "list.csv"
    csv.write_bytes("user_id\nJosé\n".encode("latin-1"))
    with pytest.raises(ManualSegmentError, match=r"list.csv: not UTF-8 text; save it as UTF-8"):
        read_member_ids(csv)


def test_csv_ids_are_stripped_and_deduplicated(tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "list.csv", "email,user_id\na, u1\nb,u2\nc,u1\n")
    assert read_member_ids(csv) == ["u1", "u2"]


def test_bad_or_taken_names_are_refused(workspace: Workspace, tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "list.csv", "user_id\nu1\n")
    with pytest.raises(ManualSegmentError, match=r"must match \[a-z\]"):
        upload_manual_segment(workspace, "VIPs", csv)
    with pytest.raises(ManualSegmentError, match="already defined"):
        upload_manual_segment(workspace, "active_vips", csv, taken_names={"active_vips"})
    assert manual_segment_names(workspace) == set()


def test_upload_lands_one_parquet_file(workspace: Workspace, tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "list.csv", "user_id\nu1\nu2\n")
    upload = upload_manual_segment(workspace, "vips", csv, uploaded_at=T0)
    assert upload.path.parent == workspace.manual_segments_landing_dir / "vips"
    assert upload.path.name.startswith("20260401T000000000000-")
    assert [p.name for p in upload.path.parent.iterdir()] == [upload.path.name]  # no temp left
    table = pq.read_table(upload.path).to_pylist()
    assert table == [
        {"segment": "vips", "user_id": "u1", "uploaded_at": T0},
        {"segment": "vips", "user_id": "u2", "uploaded_at": T0},
    ]
    assert manual_segment_names(workspace) == {"vips"}


def test_validation_learns_manual_names_from_the_landing_area(
    workspace: Workspace, tmp_path: Path
) -> None:
    with pytest.raises(DefinitionError, match="vips"):
        load_workspace_content(workspace)
    upload_manual_segment(
        workspace, "vips", write_csv(tmp_path / "l.csv", "user_id\n"), uploaded_at=T0
    )
    assert [s.name for s in load_workspace_content(workspace).segments] == ["active_vips"]


def test_cli_upload_reports_and_fails_clearly(workspace: Workspace, tmp_path: Path, capsys) -> None:
    base = ["--home", str(workspace.home), "--content", str(workspace.content_dir)]
    csv = write_csv(tmp_path / "list.csv", "user_id\nu1\nu2\n")
    assert (
        main([*base, "segments", "upload", "vips", str(csv), "--at", "2026-04-01T00:00:00Z"]) == 0
    )
    assert "manual segment vips: 2 members from 2026-04-01T00:00:00Z" in capsys.readouterr().out
    bad = write_csv(tmp_path / "bad.csv", "uid\nu1\n")
    assert main([*base, "segments", "upload", "vips", str(bad)]) == 2
    assert "no 'user_id' column" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("warehouse", ["duckdb", "postgres"])
def test_manual_segment_membership_history_and_in_segment(
    workspace: Workspace,
    tmp_path: Path,
    warehouse: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if warehouse == "postgres":
        monkeypatch.setenv("NUDGE_WAREHOUSE", "postgres")
        monkeypatch.setenv("NUDGE_POSTGRES_URL", request.getfixturevalue("postgres_database"))
    land_messages(
        workspace.events_landing_dir,
        [
            *(
                {"type": "identify", "userId": u, "timestamp": T0.isoformat() + "Z"}
                for u in ("u1", "u2", "u3")
            ),
            {
                "type": "track",
                "userId": "u2",
                "event": "logged_in",
                "timestamp": T0.isoformat() + "Z",
            },
            {
                "type": "track",
                "userId": "u3",
                "event": "logged_in",
                "timestamp": T0.isoformat() + "Z",
            },
        ],
    )
    first = write_csv(tmp_path / "first.csv", "user_id\nu1\nu2\nnobody\n")
    second = write_csv(tmp_path / "second.csv", "user_id\nu2\nu3\n")
    upload_manual_segment(workspace, "vips", first, uploaded_at=T0)
    upload_manual_segment(workspace, "vips", second, uploaded_at=T0 + 2 * H)  # takes effect later

    content = load_workspace_content(workspace)
    project = prepare_project(workspace, content)
    providers = {channel: CapturingProvider(channel) for channel in CHANNELS}
    for as_of in (T0 + H, T0 + 3 * H):
        run_pipeline(workspace, content, project, providers, as_of=as_of)

    with connect(workspace.warehouse_path, read_only=True) as con:
        history = con.execute(
            "select segment, user_id, entered_at, exited_at from marts.fct_segment_membership_history "
            "where segment in ('vips', 'active_vips') order by all"
        ).fetchall()
        kind = con.execute(
            "select kind from marts.fct_segment_definitions where segment = 'vips'"
        ).fetchone()
    # 'nobody' is not a known user: listed, never a member.
    assert history == [
        ("active_vips", "u2", T0 + H, None),
        ("active_vips", "u3", T0 + 3 * H, None),
        ("vips", "u1", T0 + H, T0 + 3 * H),
        ("vips", "u2", T0 + H, None),
        ("vips", "u3", T0 + 3 * H, None),
    ]
    assert kind == ("manual",)
    welcomed = sorted(m.user_id for m in providers["in_app"].messages)
    assert welcomed == ["u1", "u2", "u3"]
