"""Merges, devices, suppression and deletion in the warehouse, built for real (DuckDB file,
in-process dbt) run after run, each run also rebuilt from scratch on a copy: the incremental
models must hold what a full rebuild holds.

The messages are what the collector lands for Customer.io calls: `merge_customers` as an alias
with `context.nudge.merge`, devices and suppressions as track calls, an anonymous event carrying
an anonymousId that a later identify's `anonymous_id` trait links.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from nudge.core.landing.loader import load_new_files
from nudge.core.landing.writer import land_messages
from nudge.core.warehouse.connection import connect
from nudge.core.warehouse.dbt import DbtWorkspaceProject
from nudge.core.warehouse.schema import ensure_tables
from nudge.core.workspace import Workspace

T0 = datetime(2026, 3, 1)
H = timedelta(hours=1)
D = timedelta(days=1)


def at(delta: timedelta) -> str:
    return (T0 + delta).isoformat() + "Z"


def identify(user: str, delta: timedelta, **traits: Any) -> dict[str, Any]:
    return {"type": "identify", "userId": user, "timestamp": at(delta), "traits": traits}


def track(user: str | None, event: str, delta: timedelta, **extra: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "track", "event": event, "timestamp": at(delta), **extra}
    if user:
        message["userId"] = user
    return message


def merge(primary: str, secondary: str, delta: timedelta) -> dict[str, Any]:
    return {
        "type": "alias",
        "userId": primary,
        "previousId": secondary,
        "timestamp": at(delta),
        "context": {"nudge": {"merge": True}},
    }


def device(user: str, token: str, delta: timedelta, **properties: Any) -> dict[str, Any]:
    properties = {"device_id": token, **properties}
    return track(user, "Device Created or Updated", delta, properties=properties)


RUNS: list[tuple[timedelta, list[dict[str, Any]]]] = [
    (
        1 * D,
        [
            identify("p1", 1 * H, plan="pro", email="p1@example.com"),
            identify(
                "s1",
                30 * timedelta(minutes=1),
                plan="free",
                first_name="Sam",
                email="s1@example.com",
            ),
            track("s1", "purchase", 2 * H),
            # Customer.io: an anonymous event, then a person identified with its anonymous_id.
            track(None, "viewed", 2 * H, anonymousId="cio-a1"),
            identify("c1", 3 * H, plan="free", anonymous_id="cio-a1"),
            device(
                "p1",
                "tok-1",
                4 * H,
                platform="ios",
                last_used="2026-03-01T04:00:00Z",
                attributes={"app_version": "2.1"},
            ),
            device("p1", "tok-2", 4 * H, platform="android"),
            device("c1", "tok-shared", 4 * H, platform="ios"),
            identify("x1", 1 * H, plan="pro"),
            track("x1", "viewed", 2 * H),
            identify("d1", 1 * H, plan="pro"),
            track("d1", "purchase", 2 * H),
            # Customer.io calls addressed by email: a person keyed by the email while nobody
            # has it; u6 has E6@example.com before any call addresses it.
            identify("e1@example.com", 1 * H, plan="free", email="e1@example.com"),
            track("e1@example.com", "viewed", 2 * H),
            identify("u6", 1 * H, plan="pro", email="E6@example.com"),
        ],
    ),
    (
        2 * D,
        [
            merge("p1", "s1", 1 * D + 1 * H),
            track("s1", "viewed", 1 * D + 2 * H),  # after the merge: p1's too
            track("p1", "Device Deleted", 1 * D + 3 * H, properties={"device_id": "tok-2"}),
            device("s1", "tok-3", 5 * H, platform="ios", last_used=1772337600),
            # The same token registered by another person moves to them.
            device("p1", "tok-shared", 1 * D + 4 * H, platform="ios"),
            track("x1", "User Suppressed", 1 * D + 1 * H),
            {"type": "delete", "userId": "d1", "timestamp": at(1 * D + 1 * H)},
            # u5 identifies with e1's email: the person known by that email becomes u5.
            identify("u5", 1 * D + 1 * H, plan="pro", email="e1@example.com"),
            track("e1@example.com", "purchase", 1 * D + 2 * H),
            track("e6@example.com", "clicked", 1 * D + 2 * H),  # u6's (case ignored)
        ],
    ),
    (
        3 * D,
        [
            # Reach the warehouse while x1 is suppressed: ignored.
            track("x1", "purchase", 2 * D + 1 * H),
            identify("x1", 2 * D + 2 * H, plan="team"),
            # Suppressed by email: the person who has the address.
            track("e6@example.com", "User Suppressed", 2 * D + 1 * H),
        ],
    ),
    (
        4 * D,
        [
            track("x1", "User Unsuppressed", 3 * D + 1 * H),
            identify("x1", 3 * D + 2 * H, plan="free"),
            # p1 (with s1 in it) is merged into q1: one person, q1, with all three ids' data.
            identify("q1", 1 * H, plan="enterprise"),
            merge("q1", "p1", 3 * D + 1 * H),
        ],
    ),
]

COMPARED = {
    "intermediate.int_identity_map": "*",
    "intermediate.int_known_users": "*",
    "intermediate.int_user_trait_values": "user_id, trait, cast(value as varchar), set_at",
    "marts.fct_events": "*",
    "marts.dim_users": "* exclude (traits)",
    "marts.dim_user_devices": "user_id, device_id, platform, last_used_at, updated_at",
}
DERIVED_TABLES = (
    "staging.stg_events",
    "intermediate.int_incremental_watermarks",
    "intermediate.int_changed_users",
    "intermediate.int_changed_anonymous_ids",
    "intermediate.int_identity_map",
    "intermediate.int_rewritten_users",
    "intermediate.int_known_users",
    "intermediate.int_user_trait_values",
    "intermediate.int_merged_users",
    "marts.fct_events",
    "marts.dim_users",
    "marts.fct_segment_membership_history",
    "marts.fct_segment_definitions",
    "marts.fct_segment_definition_changes",
)


def rows(con: Any, table: str, columns: str) -> list[tuple]:
    return sorted(con.execute(f"select {columns} from {table}").fetchall(), key=repr)


def observe(con: Any) -> dict[str, Any]:
    users = {
        r[0]: {"plan": r[1], "email": r[2], "first_name": r[3]}
        for r in con.execute(
            "select user_id, plan, email, first_name from marts.dim_users"
        ).fetchall()
    }
    events: dict[str, list[str]] = {}
    for user, event in con.execute(
        "select user_id, event from marts.fct_events order by timestamp, message_id"
    ).fetchall():
        events.setdefault(user, []).append(event)
    devices = {
        (r[0], r[1]): r[2:]
        for r in con.execute(
            "select user_id, device_id, platform, last_used_at, attributes ->> '$.app_version' "
            "from marts.dim_user_devices"
        ).fetchall()
    }
    return {"users": users, "events": events, "devices": devices}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    home = tmp_path_factory.mktemp("identity")
    workspace = Workspace(home=home / "ws", content_dir=home / "content").ensure()
    fresh = Workspace(home=home / "fresh", content_dir=home / "content").ensure()
    project = DbtWorkspaceProject(workspace)
    fresh_project = DbtWorkspaceProject(fresh)
    project.assemble({})
    fresh_project.assemble({})
    observed = []
    for delta, messages in RUNS:
        as_of = T0 + delta
        land_messages(workspace.events_landing_dir, messages)
        with connect(workspace.warehouse_path) as con:
            ensure_tables(con)
            load_new_files(con, workspace.events_landing_dir)
        project.build(as_of, exclude="tag:delivery_reports")

        shutil.copyfile(workspace.warehouse_path, fresh.warehouse_path)
        with connect(fresh.warehouse_path) as con:
            for table in DERIVED_TABLES:
                con.execute(f"drop table if exists {table}")
            con.execute("drop view if exists marts.fct_segment_memberships")
        fresh_project.build(as_of, exclude="tag:delivery_reports")

        with connect(workspace.warehouse_path) as con:
            con.execute(f"attach '{fresh.warehouse_path}' as fresh (read_only)")
            observed.append(
                {
                    "as_of": as_of,
                    "incremental": {t: rows(con, t, c) for t, c in COMPARED.items()},
                    "full": {t: rows(con, f"fresh.{t}", c) for t, c in COMPARED.items()},
                    **observe(con),
                }
            )
            con.execute("detach fresh")
    return observed


@pytest.mark.parametrize("run", range(len(RUNS)))
@pytest.mark.parametrize("table", sorted(COMPARED))
def test_incremental_build_equals_a_full_rebuild(
    runs: list[dict[str, Any]], run: int, table: str
) -> None:
    observed = runs[run]
    assert observed["incremental"][table] == observed["full"][table], (
        f"{table} after run {run + 1} (as_of {observed['as_of']}) differs from a full rebuild"
    )


def test_merge_moves_events_and_fills_only_missing_traits(runs: list[dict[str, Any]]) -> None:
    before, after = runs[0], runs[1]
    assert {"p1", "s1"} <= before["users"].keys()
    assert before["events"]["s1"] == ["purchase"]
    assert "s1" not in after["users"] and "s1" not in after["events"]
    # The primary keeps its own plan and email; the secondary's first_name fills the gap.
    assert after["users"]["p1"] == {"plan": "pro", "email": "p1@example.com", "first_name": "Sam"}
    assert after["events"]["p1"].count("purchase") == 1
    assert "viewed" in after["events"]["p1"]  # sent for s1 after the merge


def test_a_merge_chain_joins_every_id_into_the_latest_primary(
    runs: list[dict[str, Any]],
) -> None:
    last = runs[3]
    assert not {"p1", "s1"} & last["users"].keys()
    assert last["users"]["q1"] == {
        "plan": "enterprise",
        "email": "p1@example.com",
        "first_name": "Sam",
    }
    assert last["events"]["q1"].count("purchase") == 1
    q1_devices = {device for user, device in last["devices"] if user == "q1"}
    assert q1_devices == {"tok-1", "tok-3", "tok-shared"}


def test_devices_per_person_follow_updates_deletes_and_merges(
    runs: list[dict[str, Any]],
) -> None:
    first, second = runs[0]["devices"], runs[1]["devices"]
    assert first[("p1", "tok-1")] == ("ios", T0 + 4 * H, "2.1")
    assert first[("p1", "tok-2")] == ("android", None, None)
    assert ("p1", "tok-2") not in second  # Device Deleted
    assert ("c1", "tok-shared") in first
    assert ("c1", "tok-shared") not in second and ("p1", "tok-shared") in second
    # Registered for s1 (before the merge) with unix seconds: read as a timestamp, and p1's now.
    assert ("s1", "tok-3") not in second
    assert second[("p1", "tok-3")][:2] == ("ios", datetime(2026, 3, 1, 4, 0))


def test_customerio_anonymous_events_follow_the_anonymous_id_trait(
    runs: list[dict[str, Any]],
) -> None:
    assert runs[0]["events"]["c1"][0] == "viewed"


def test_delete_removes_the_person_from_every_model(runs: list[dict[str, Any]]) -> None:
    assert "d1" in runs[0]["users"]
    for later in runs[1:]:
        assert "d1" not in later["users"] and "d1" not in later["events"]
        assert not [key for key in later["devices"] if key[0] == "d1"]


def test_suppression_keeps_the_id_out_until_unsuppressed(runs: list[dict[str, Any]]) -> None:
    assert runs[0]["users"]["x1"]["plan"] == "pro"
    # Suppressed: gone, and what still arrives for it stays out.
    assert "x1" not in runs[1]["users"] and "x1" not in runs[2]["users"]
    assert "x1" not in runs[2]["events"]
    # Unsuppressed: a fresh profile from what came after, nothing from before or during.
    assert runs[3]["users"]["x1"] == {"plan": "free", "email": None, "first_name": None}
    assert "x1" not in runs[3]["events"]


def test_calls_addressed_by_email_reach_the_person_who_has_it(
    runs: list[dict[str, Any]],
) -> None:
    first, second = runs[0], runs[1]
    # Nobody has the email yet: a person keyed by it.
    assert first["users"]["e1@example.com"]["plan"] == "free"
    assert first["events"]["e1@example.com"] == ["viewed"]
    # u5 identifies with it: one person, u5, with the email person's history and traits.
    assert "e1@example.com" not in second["users"] and "e1@example.com" not in second["events"]
    assert second["users"]["u5"] == {"plan": "pro", "email": "e1@example.com", "first_name": None}
    assert second["events"]["u5"] == ["viewed", "purchase"]
    assert second["events"]["u6"] == ["clicked"]


def test_suppression_by_email_suppresses_the_person_who_has_it(
    runs: list[dict[str, Any]],
) -> None:
    assert runs[1]["users"]["u6"]["plan"] == "pro"
    for later in runs[2:]:
        assert "u6" not in later["users"] and "u6" not in later["events"]


def test_a_build_that_stops_after_the_merges_loses_no_move(tmp_path: Path) -> None:
    """Late identifies make u5 the address's first owner and u7 the first to identify with
    anonymous id a1, so their orders move from u4 and u6; u8 is the first to identify with a2,
    whose order was nobody's. The build that sees them stops right
    after int_merged_users and int_identity_map (a failure or a kill later on): the next build
    must still move the orders, against what the last completed build held."""
    workspace = Workspace(home=tmp_path / "ws", content_dir=tmp_path / "content").ensure()
    project = DbtWorkspaceProject(workspace)
    project.assemble({})

    def land(messages: list[dict[str, Any]]) -> None:
        land_messages(workspace.events_landing_dir, messages)
        with connect(workspace.warehouse_path) as con:
            ensure_tables(con)
            load_new_files(con, workspace.events_landing_dir)

    def orders() -> dict[str, list[str]]:
        with connect(workspace.warehouse_path, read_only=True) as con:
            found: dict[str, list[str]] = {}
            for user, message_id in con.execute(
                "select user_id, message_id from marts.fct_events where event = 'order'"
            ).fetchall():
                found.setdefault(user, []).append(message_id)
        return found

    land(
        [
            identify("u4", 2 * H, email="kim@example.com"),
            track("kim@example.com", "order", 3 * H, messageId="order-1"),
            track(None, "order", 3 * H, messageId="order-2", anonymousId="a1"),
            {**identify("u6", 4 * H), "anonymousId": "a1"},
            track(None, "order", 3 * H, messageId="order-3", anonymousId="a2"),
        ]
    )
    project.build(T0 + 1 * D, exclude="tag:delivery_reports")
    assert orders() == {"u4": ["order-1"], "u6": ["order-2"]}  # order-3 is nobody's yet

    land(
        [
            identify("u5", 1 * H, email="kim@example.com"),
            {**identify("u7", 2 * H), "anonymousId": "a1"},
            {**identify("u8", D + H), "anonymousId": "a2"},  # a link a2 did not have
        ]
    )
    # Stops after the identity map and the merges.
    project.build(T0 + 2 * D, select="+int_merged_users +int_identity_map")
    project.build(T0 + 2 * D, exclude="tag:delivery_reports")
    assert orders() == {"u5": ["order-1"], "u7": ["order-2"], "u8": ["order-3"]}
