"""The dbt models, built for real (DuckDB file, in-process dbt) through DbtWorkspaceProject.

One dataset holds every fact under test and is built at two instants, so the whole module costs
a parse and a handful of builds:

- build A at T0+1d, build B at T0+9d, then B again (re-running an as_of changes nothing).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from nudge.core.landing.loader import load_new_files
from nudge.core.landing.writer import land_messages
from nudge.core.warehouse.connection import connect
from nudge.core.warehouse.dbt import DbtBuildError, DbtWorkspaceProject
from nudge.core.warehouse.schema import ensure_tables
from nudge.core.workspace import Workspace

T0 = datetime(2026, 1, 1)
AS_OF_A = T0 + timedelta(days=1)
AS_OF_B = T0 + timedelta(days=9)
PRO_PLAN = "select user_id from {{ ref('dim_users') }} where plan = 'pro'"


def at(delta: timedelta) -> str:
    return (T0 + delta).isoformat() + "Z"


H = timedelta(hours=1)
D = timedelta(days=1)

MESSAGES: list[dict[str, Any]] = [
    # u1: traits change at T0+2d (plan pro, first_name unset); a purchase landed twice.
    {
        "type": "identify",
        "userId": "u1",
        "traits": {"email": "ann@example.com", "plan": "free", "first_name": "Ann"},
        "timestamp": at(0 * H),
    },
    {
        "type": "identify",
        "userId": "u1",
        "traits": {"plan": "pro", "first_name": None},
        "timestamp": at(2 * D),
    },
    {
        "type": "track",
        "userId": "u1",
        "event": "purchase",
        "messageId": "m-dup",
        "timestamp": at(H),
    },
    # u2: anonymous activity, linked by an identify carrying both ids at T0+2d.
    {
        "type": "track",
        "anonymousId": "anon-1",
        "event": "viewed",
        "messageId": "m-anon-1",
        "timestamp": at(H),
    },
    {"type": "identify", "userId": "u2", "anonymousId": "anon-1", "timestamp": at(2 * D)},
    # u3: anonymous activity, linked by an alias at T0+2d.
    {
        "type": "page",
        "anonymousId": "anon-2",
        "name": "pricing",
        "messageId": "m-anon-2",
        "timestamp": at(H),
    },
    {"type": "alias", "previousId": "anon-2", "userId": "u3", "timestamp": at(2 * D)},
    # anon-3: never linked, never a user.
    {
        "type": "track",
        "anonymousId": "anon-3",
        "event": "viewed",
        "messageId": "m-anon-3",
        "timestamp": at(H),
    },
    # u4: deleted at T0+2d.
    {
        "type": "identify",
        "userId": "u4",
        "traits": {"email": "gone@example.com"},
        "timestamp": at(0 * H),
    },
    {"type": "track", "userId": "u4", "event": "purchase", "messageId": "m-u4", "timestamp": at(H)},
    {"type": "delete", "userId": "u4", "timestamp": at(2 * D)},
    # u5: five logins on day one: a power user at A, aged out by B with no new event.
    *(
        {"type": "track", "userId": "u5", "event": "logged_in", "timestamp": at((i + 1) * H)}
        for i in range(5)
    ),
]


def snapshot(path: Path) -> dict[str, Any]:
    with connect(path, read_only=True) as con:

        def rows(sql: str) -> list[tuple]:
            return con.execute(sql).fetchall()

        return {
            "users": {
                r[0]: r
                for r in rows(
                    "select user_id, plan, first_name, email, traits from marts.dim_users"
                )
            },
            "events": rows("select message_id, user_id from marts.fct_events order by all"),
            "members": set(rows("select segment, user_id from marts.fct_segment_memberships")),
            "history": rows(
                "select segment, user_id, entered_at, exited_at "
                "from marts.fct_segment_membership_history order by all"
            ),
        }


@pytest.fixture(scope="module")
def timeline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("ws")
    workspace = Workspace(home=home, content_dir=home / "content").ensure()
    land_messages(workspace.events_landing_dir, MESSAGES)
    # The duplicate arrives again in a later file: the first landed copy wins.
    land_messages(
        workspace.events_landing_dir,
        [
            {
                "type": "track",
                "userId": "u1",
                "event": "purchase",
                "messageId": "m-dup",
                "timestamp": at(H),
            }
        ],
    )
    with connect(workspace.warehouse_path) as con:
        ensure_tables(con)
        load_new_files(con, workspace.events_landing_dir)

    project = DbtWorkspaceProject(workspace)
    project.assemble({"pro_plan": PRO_PLAN})
    results_a = project.build(AS_OF_A, exclude="tag:delivery_reports")
    a = snapshot(workspace.warehouse_path)
    project.build(AS_OF_B, exclude="tag:delivery_reports")
    b = snapshot(workspace.warehouse_path)
    project.build(AS_OF_B, exclude="tag:delivery_reports")
    b_again = snapshot(workspace.warehouse_path)
    reports = project.build(AS_OF_B, select="tag:delivery_reports")
    return {
        "workspace": workspace,
        "project": project,
        "results_a": results_a,
        "reports": reports,
        "a": a,
        "b": b,
        "b_again": b_again,
    }


def test_events_are_deduplicated_by_message_id(timeline: dict[str, Any]) -> None:
    ids = [message_id for message_id, _ in timeline["a"]["events"]]
    assert ids.count("m-dup") == 1


def test_anonymous_events_count_only_once_linked(timeline: dict[str, Any]) -> None:
    a, b = timeline["a"], timeline["b"]
    assert not {"u2", "u3"} & a["users"].keys()
    assert not any(m.startswith("m-anon") for m, _ in a["events"])
    assert ("m-anon-1", "u2") in b["events"]  # linked by identify
    assert ("m-anon-2", "u3") in b["events"]  # linked by alias
    assert "m-anon-3" not in {m for m, _ in b["events"]}
    assert "anon-3" not in b["users"]


def test_traits_as_of_the_run(timeline: dict[str, Any]) -> None:
    u1_a = timeline["a"]["users"]["u1"]
    u1_b = timeline["b"]["users"]["u1"]
    assert u1_a[1:4] == ("free", "Ann", "ann@example.com")
    # At B: plan changed by the later identify, first_name unset by null, email kept.
    assert u1_b[1:4] == ("pro", None, "ann@example.com")
    assert '"first_name"' not in u1_b[4]


def test_deleted_user_disappears(timeline: dict[str, Any]) -> None:
    assert "u4" in timeline["a"]["users"]
    assert ("m-u4", "u4") in timeline["a"]["events"]
    assert "u4" not in timeline["b"]["users"]
    assert "m-u4" not in {m for m, _ in timeline["b"]["events"]}


def test_membership_history_opens_and_closes_intervals(timeline: dict[str, Any]) -> None:
    assert timeline["a"]["members"] == {("power_users", "u5")}
    assert timeline["a"]["history"] == [("power_users", "u5", AS_OF_A, None)]
    # u5 ages out of power_users with no new event; u1 enters pro_plan.
    assert timeline["b"]["members"] == {("pro_plan", "u1")}
    assert timeline["b"]["history"] == [
        ("power_users", "u5", AS_OF_A, AS_OF_B),
        ("pro_plan", "u1", AS_OF_B, None),
    ]
    assert timeline["b_again"]["history"] == timeline["b"]["history"]


def test_dbt_tests_ran_and_passed(timeline: dict[str, Any]) -> None:
    tests = {r.name: r.status for r in timeline["results_a"] if r.resource_type == "test"}
    assert tests["unique_dim_users_user_id"] == "pass"
    assert tests["unique_added_fct_events_message_id"] == "pass"
    assert tests["segment_models_contract"] == "pass"
    assert tests["unique_fct_segment_membership_history_intervals"] == "pass"
    assert set(tests.values()) == {"pass"}
    # dbt unit tests (fixed rows, not data) are left to builds of the project on its own.
    assert not [r.name for r in timeline["results_a"] if r.resource_type == "unit_test"]
    assert {r.name for r in timeline["reports"] if r.resource_type == "model"} == {
        "rpt_messages_by_journey_step",
        "rpt_journey_entries",
    }


def test_no_duckdb_handle_survives_a_build(timeline: dict[str, Any]) -> None:
    path = timeline["workspace"].warehouse_path
    duckdb.connect(str(path), read_only=True).close()
    other = subprocess.run(
        [sys.executable, "-c", f"import duckdb; duckdb.connect({str(path)!r}).close()"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert other.returncode == 0, other.stderr


def test_assembling_leaves_another_process_s_file_in_progress_alone(tmp_path: Path) -> None:
    """A step of a parallel run assembling the project must not count, or delete, the temporary
    file another process is writing before it replaces a model (assemble writes whole files)."""
    workspace = Workspace(home=tmp_path, content_dir=tmp_path / "content").ensure()
    project = DbtWorkspaceProject(workspace)
    assert project.assemble({"pro_plan": PRO_PLAN}) is True
    model = next(project.project_dir.rglob("pro_plan.sql"))
    in_progress = model.with_name(f".{model.name}.99999.tmp")
    in_progress.write_text("-- half")
    assert project.assemble({"pro_plan": PRO_PLAN}) is False
    assert in_progress.read_text() == "-- half"
    assert list(project.project_dir.rglob(".*.tmp")) == [in_progress]  # none of its own


def test_manifest_is_reused_by_another_workspace_with_the_same_project(
    timeline: dict[str, Any], tmp_path: Path
) -> None:
    first: DbtWorkspaceProject = timeline["project"]
    workspace = Workspace(home=tmp_path, content_dir=tmp_path / "content").ensure()
    second = DbtWorkspaceProject(workspace)
    assert second.assemble({"pro_plan": PRO_PLAN}) is True
    assert second.assemble({"pro_plan": PRO_PLAN}) is False
    assert second.manifest() is first.manifest()
    assert second.manifest_path.is_file()

    land_messages(
        workspace.events_landing_dir,
        [{"type": "identify", "userId": "solo", "traits": {"plan": "pro"}, "timestamp": at(0 * H)}],
    )
    with connect(workspace.warehouse_path) as con:
        ensure_tables(con)
        load_new_files(con, workspace.events_landing_dir)
    second.build(AS_OF_A, select="+fct_segment_memberships")
    with connect(workspace.warehouse_path, read_only=True) as con:
        members = con.execute(
            "select segment, user_id from marts.fct_segment_memberships"
        ).fetchall()
    assert members == [("pro_plan", "solo")]
    # The first workspace's warehouse was not touched by this build.
    assert snapshot(timeline["workspace"].warehouse_path)["members"] == {("pro_plan", "u1")}


def test_reassembled_project_is_reparsed_and_manifest_json_follows(
    timeline: dict[str, Any], tmp_path: Path
) -> None:
    workspace = Workspace(home=tmp_path, content_dir=tmp_path / "content").ensure()
    project = DbtWorkspaceProject(workspace)

    def manifest_json_models() -> set[str]:
        nodes = json.loads(project.manifest_path.read_text())["nodes"]
        return {node["name"] for node in nodes.values() if node["resource_type"] == "model"}

    project.assemble({"pro_plan": PRO_PLAN, "extra": "select user_id from {{ ref('pro_plan') }}"})
    manifest = project.manifest()
    union = manifest.nodes["model.nudge.fct_segment_memberships"]
    assert set(union.depends_on.nodes) == {
        "model.nudge.power_users",
        "model.nudge.pro_plan",
        "model.nudge.extra",
    }
    assert "extra" in manifest_json_models()
    assert (project.project_dir / "models/segments/generated/extra.sql").is_file()

    assert project.assemble({"pro_plan": PRO_PLAN}) is True
    assert not (project.project_dir / "models/segments/generated/extra.sql").exists()
    assert project.manifest() is timeline["project"].manifest()
    assert "extra" not in manifest_json_models()
    assert "pro_plan" in manifest_json_models()


def test_failing_segment_names_the_node(tmp_path: Path) -> None:
    workspace = Workspace(home=tmp_path, content_dir=tmp_path / "content").ensure()
    with connect(workspace.warehouse_path) as con:
        ensure_tables(con)
    project = DbtWorkspaceProject(workspace)
    project.assemble({"broken": "select no_such_column as user_id from {{ ref('dim_users') }}"})
    with pytest.raises(DbtBuildError) as raised:
        project.build(AS_OF_A, exclude="tag:delivery_reports")
    assert "model.nudge.broken" in str(raised.value)
    assert "no_such_column" in str(raised.value)
    assert [node for node, _ in raised.value.failures] == ["model.nudge.broken"]
