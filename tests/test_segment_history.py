"""Segment membership history, definition versions and the segment contract, built for real.

One workspace is built at A, then (with one segment edited, one removed, a user deleted and
another deleted and re-created) at B, then at B again, so the module costs a few builds.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from nudge.core.landing.loader import load_new_files
from nudge.core.landing.writer import land_messages
from nudge.core.warehouse.connection import connect
from nudge.core.warehouse.dbt import DbtBuildError, DbtWorkspaceProject, copy_dbt_project
from nudge.core.warehouse.schema import ensure_tables
from nudge.core.workspace import Workspace

pytestmark = pytest.mark.slow

T0 = datetime(2026, 3, 1)
H = timedelta(hours=1)
D = timedelta(days=1)
AS_OF_A = T0 + H
AS_OF_B = T0 + 2 * D

PAID_V1 = "select user_id from {{ ref('dim_users') }} where plan = 'pro'"
PAID_V2 = "select user_id from {{ ref('dim_users') }} where plan in ('pro', 'team')"
# Same SQL as v2 with a comment and other whitespace: not a new definition.
PAID_V2_REFORMATTED = (
    "-- paying plans\nselect user_id\nfrom {{ ref('dim_users') }}\nwhere plan in ('pro', 'team')"
)
RECENT = (
    "select distinct user_id from {{ ref('fct_events') }} "
    "where event = 'logged_in' and timestamp > {{ as_of() }} - interval 1 day"
)
KNOWN = "select user_id from {{ ref('dim_users') }}"


def at(delta: timedelta) -> str:
    return (T0 + delta).isoformat() + "Z"


def land_and_load(workspace: Workspace, messages: list[dict[str, Any]]) -> None:
    land_messages(workspace.events_landing_dir, messages)
    with connect(workspace.warehouse_path) as con:
        ensure_tables(con)
        load_new_files(con, workspace.events_landing_dir)


def rows(workspace: Workspace, sql: str) -> list[tuple]:
    with connect(workspace.warehouse_path, read_only=True) as con:
        return con.execute(sql).fetchall()


HISTORY = (
    "select segment, user_id, entered_at, exited_at, exit_reason "
    "from marts.fct_segment_membership_history order by all"
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("history")
    workspace = Workspace(home=home, content_dir=home / "content").ensure()
    land_and_load(
        workspace,
        [
            {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}, "timestamp": at(0 * H)},
            {
                "type": "identify",
                "userId": "u2",
                "traits": {"plan": "team"},
                "timestamp": at(0 * H),
            },
            {"type": "track", "userId": "u2", "event": "logged_in", "timestamp": at(0 * H)},
            {"type": "identify", "userId": "u3", "timestamp": at(0 * H)},
            {"type": "identify", "userId": "u4", "timestamp": at(0 * H)},
            {"type": "identify", "userId": "u5", "timestamp": at(0 * H)},
        ],
    )
    project = DbtWorkspaceProject(workspace)
    project.assemble({"paid": PAID_V1, "recent": RECENT, "known": KNOWN, "doomed": KNOWN})
    project.build(AS_OF_A, exclude="tag:delivery_reports")
    a = rows(workspace, HISTORY)
    # A row no build would produce: it survives later builds only if history is not rebuilt.
    with connect(workspace.warehouse_path) as con:
        con.execute(
            "insert into marts.fct_segment_membership_history "
            "(segment, user_id, entered_at, exited_at, exit_reason) "
            "values ('paid', 'sentinel', ?, ?, 'left')",
            [T0 - D, T0],
        )

    land_and_load(
        workspace,
        [
            {"type": "delete", "userId": "u3", "timestamp": at(D)},
            {"type": "delete", "userId": "u4", "timestamp": at(D)},
            {"type": "identify", "userId": "u4", "timestamp": at(D + H)},
            # Late: stamped before u5 entered at A, landed after.
            {"type": "delete", "userId": "u5", "timestamp": at(H / 2)},
        ],
    )
    project.assemble({"paid": PAID_V2, "recent": RECENT, "known": KNOWN})
    project.build(AS_OF_B, exclude="tag:delivery_reports")
    b = rows(workspace, HISTORY)
    project.assemble({"paid": PAID_V2_REFORMATTED, "recent": RECENT, "known": KNOWN})
    project.build(AS_OF_B, exclude="tag:delivery_reports")
    b_again = rows(workspace, HISTORY)
    return {"workspace": workspace, "project": project, "a": a, "b": b, "b_again": b_again}


def test_time_alone_closes_an_interval(built: dict[str, Any]) -> None:
    assert ("recent", "u2", AS_OF_A, None, None) in built["a"]
    assert ("recent", "u2", AS_OF_A, AS_OF_B, "left") in built["b"]


def test_history_is_incremental_not_rebuilt(built: dict[str, Any]) -> None:
    assert ("paid", "sentinel", T0 - D, T0, "left") in built["b"]


def test_definition_change_applies_from_that_run_and_keeps_continuing_members(
    built: dict[str, Any],
) -> None:
    paid = [r for r in built["b"] if r[0] == "paid" and r[1] != "sentinel"]
    # u1 qualifies under both versions: one interval, never closed; u2 enters with v2.
    assert paid == [("paid", "u1", AS_OF_A, None, None), ("paid", "u2", AS_OF_B, None, None)]
    versions = dict(
        rows(
            built["workspace"],
            "select user_id, definition_version from marts.fct_segment_membership_history "
            "where segment = 'paid' and user_id <> 'sentinel'",
        )
    )
    assert versions["u1"] != versions["u2"]


def test_definition_changes_are_logged(built: dict[str, Any]) -> None:
    changes = rows(
        built["workspace"],
        "select segment, change, changed_at, previous_version is not null, kind "
        "from marts.fct_segment_definition_changes order by changed_at, segment",
    )
    assert changes == [
        ("doomed", "created", AS_OF_A, False, "yaml"),
        ("known", "created", AS_OF_A, False, "yaml"),
        ("paid", "created", AS_OF_A, False, "yaml"),
        ("power_users", "created", AS_OF_A, False, "sql"),
        ("recent", "created", AS_OF_A, False, "yaml"),
        ("doomed", "removed", AS_OF_B, True, None),
        ("paid", "changed", AS_OF_B, True, "yaml"),
    ]


def test_removed_segment_closes_its_intervals(built: dict[str, Any]) -> None:
    doomed = [r for r in built["b"] if r[0] == "doomed"]
    assert {(r[1], r[3], r[4]) for r in doomed} == {
        ("u1", AS_OF_B, "segment_removed"),
        ("u2", AS_OF_B, "segment_removed"),
        ("u3", AS_OF_B, "segment_removed"),
        ("u4", AS_OF_B, "segment_removed"),
        ("u5", AS_OF_B, "segment_removed"),
    }


def test_deleted_users_intervals_close_and_a_recreated_profile_starts_over(
    built: dict[str, Any],
) -> None:
    known = [r for r in built["b"] if r[0] == "known" and r[1] in ("u3", "u4", "u5")]
    assert known == [
        ("known", "u3", AS_OF_A, AS_OF_B, "user_deleted"),
        ("known", "u4", AS_OF_A, AS_OF_B, "user_deleted"),
        ("known", "u4", AS_OF_B, None, None),
        # The delete arrived late (stamped before u5 entered): still a deletion, not "left".
        ("known", "u5", AS_OF_A, AS_OF_B, "user_deleted"),
    ]


def test_rerun_at_the_same_as_of_changes_nothing(built: dict[str, Any]) -> None:
    assert built["b_again"] == built["b"]
    changes = rows(built["workspace"], "select count(*) from marts.fct_segment_definition_changes")
    assert changes == [(7,)]  # the reformatted definition is the same version


def test_earlier_as_of_is_refused(built: dict[str, Any]) -> None:
    with pytest.raises(DbtBuildError, match="only moves forward"):
        built["project"].build(AS_OF_A, exclude="tag:delivery_reports")
    assert rows(built["workspace"], HISTORY) == built["b"]


def test_segment_contract_is_checked_for_every_segment_model(tmp_path: Path) -> None:
    workspace = Workspace(home=tmp_path, content_dir=tmp_path / "content").ensure()
    land_and_load(workspace, [{"type": "identify", "userId": "u1", "timestamp": at(0 * H)}])
    project = DbtWorkspaceProject(workspace)
    project.assemble({"twice": f"{KNOWN} union all {KNOWN}"})
    with pytest.raises(DbtBuildError) as raised:
        project.build(AS_OF_A, exclude="tag:delivery_reports")
    assert "segment_models_contract" in str(raised.value)
    problems = rows(workspace, "select 1")  # the warehouse is still readable
    assert problems == [(1,)]


def test_removing_the_last_segment_closes_its_intervals(tmp_path: Path) -> None:
    source = copy_dbt_project(tmp_path / "dbt_source")
    for example in (source / "models" / "segments").glob("power_users.*"):
        example.unlink()  # the project's example SQL segment: then no segment is left
    workspace = Workspace(home=tmp_path / "home", content_dir=tmp_path / "content").ensure()
    land_and_load(workspace, [{"type": "identify", "userId": "u1", "timestamp": at(0 * H)}])
    project = DbtWorkspaceProject(workspace, source_dir=source)
    project.assemble({"known": KNOWN})
    project.build(AS_OF_A, exclude="tag:delivery_reports")
    project.assemble({})
    project.build(AS_OF_B, exclude="tag:delivery_reports")
    assert rows(
        workspace,
        "select segment, user_id, exited_at, exit_reason from marts.fct_segment_membership_history",
    ) == [("known", "u1", AS_OF_B, "segment_removed")]
