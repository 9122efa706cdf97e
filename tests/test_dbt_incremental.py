"""The incremental models give exactly what a full rebuild gives, while recomputing only the change.

One workspace is built run after run with its incremental models (staging, identity map, known
users, traits, fct_events, dim_users). After every run its warehouse is copied, every derived
table is dropped from the copy and the copy is rebuilt from scratch at the same as_of: the two
must hold the same rows. The runs are chosen to move things that per-user recomputation can
miss: late events, duplicates, future-stamped calls that time reaches later, an anonymous id
linked after its calls, a late link that is earlier than the existing one (the id moves to
another user), a delete that hands an anonymous id to its next linker, and a deleted user who
comes back. YAML segments recomputed per user are incremental too, those that move with time
recording whom each build recomputes (one segment is redefined in run 4, which must recompute
it, and the segments reading it, for everyone).
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from nudge.core.dsl.spec import (
    All,
    Attribute,
    Comparison,
    Content,
    InSegment,
    MessageCondition,
    Origin,
    Performed,
    PropertyFilter,
    Segment,
)
from nudge.core.landing.loader import load_new_files
from nudge.core.landing.writer import land_messages
from nudge.core.segments.dbt_models import generated_segment_models
from nudge.core.warehouse.connection import connect
from nudge.core.warehouse.dbt import DbtBuildError, DbtWorkspaceProject
from nudge.core.warehouse.schema import ensure_tables
from nudge.core.workspace import Workspace

T0 = datetime(2026, 3, 1)
H = timedelta(hours=1)
D = timedelta(days=1)
ORIGIN = Origin("content/segments.yml", "segment")
BUYERS = "select distinct user_id from {{ ref('fct_events') }} where event = 'purchase'"
# Segments that move with time: each build records whom it recomputes.
TIME_SEGMENTS = ("recent_buyers", "fresh_orders", "trial_ending", "recent_pro_buyers")
SEGMENT_NAMES = ("pro_plan", "yaml_buyers", "pro_buyers", *TIME_SEGMENTS, "buyers", "emailed")
INCREMENTAL_SEGMENTS = {"pro_plan", "yaml_buyers", "pro_buyers", *TIME_SEGMENTS}


def segment_models(plan: str) -> dict[str, str]:
    """Incremental YAML segments (three that follow user data only, four that also move with
    time), one that reads the delivery ledger (rebuilt in full), one hand-written SQL."""
    content = Content(
        segments=(
            Segment("pro_plan", ORIGIN, Attribute("plan", Comparison("eq", plan))),
            Segment("yaml_buyers", ORIGIN, Performed("purchase")),
            Segment("pro_buyers", ORIGIN, All((InSegment("pro_plan"), InSegment("yaml_buyers")))),
            Segment("recent_buyers", ORIGIN, Performed("purchase", within=timedelta(days=1))),
            Segment(
                "fresh_orders",
                ORIGIN,
                Performed(
                    "purchase",
                    where=(PropertyFilter(("placed_at",), Comparison("newer_than", 1 * D)),),
                ),
            ),
            Segment("trial_ending", ORIGIN, Attribute("trial_ends", Comparison("within_next", D))),
            Segment(
                "recent_pro_buyers",
                ORIGIN,
                All((InSegment("recent_buyers"), InSegment("pro_plan"))),
            ),
            Segment("emailed", ORIGIN, MessageCondition("sent", within=timedelta(days=7))),
        )
    )
    return {**generated_segment_models(content), "buyers": BUYERS}


DERIVED_TABLES = (
    "staging.stg_events",
    "intermediate.int_incremental_watermarks",
    "intermediate.int_changed_users",
    "intermediate.int_changed_anonymous_ids",
    "intermediate.int_identity_map",
    "intermediate.int_rewritten_users",
    "intermediate.int_known_users",
    "intermediate.int_user_trait_values",
    "marts.fct_events",
    "marts.dim_users",
    "marts.fct_segment_membership_history",
    "marts.fct_segment_definitions",
    "marts.fct_segment_definition_changes",
    *(f"segments.{name}" for name in SEGMENT_NAMES),
)
# dim_users.traits is a JSON object whose key order follows aggregation order: compared through
# int_user_trait_values instead.
COMPARED = {
    "staging.stg_events": "message_id, type, user_id, anonymous_id, timestamp",
    "intermediate.int_identity_map": "*",
    "intermediate.int_known_users": "*",
    "intermediate.int_user_trait_values": "user_id, trait, cast(value as varchar), set_at",
    "marts.fct_events": "*",
    "marts.dim_users": "* exclude (traits)",
    **{f"segments.{name}": "*" for name in SEGMENT_NAMES},
    "marts.fct_segment_memberships": "*",
}
OPEN_INTERVALS = (
    "select segment, user_id from {schema}marts.fct_segment_membership_history "
    "where exited_at is null"
)


def at(delta: timedelta) -> str:
    return (T0 + delta).isoformat() + "Z"


def identify(user: str | None, delta: timedelta, anon: str | None = None, **traits: Any) -> dict:
    message: dict[str, Any] = {"type": "identify", "timestamp": at(delta), "traits": traits}
    if user:
        message["userId"] = user
    if anon:
        message["anonymousId"] = anon
    return message


def track(user: str | None, event: str, delta: timedelta, anon: str | None = None, **extra: Any):
    message: dict[str, Any] = {"type": "track", "event": event, "timestamp": at(delta), **extra}
    if user:
        message["userId"] = user
    if anon:
        message["anonymousId"] = anon
    return message


# (as_of of the run, messages landed just before it)
RUNS: list[tuple[timedelta, list[dict[str, Any]]]] = [
    (
        1 * D,
        [
            identify("u1", 1 * H, anon="a1", plan="free", email="u1@example.com"),
            track(None, "purchase", 2 * H, anon="a1"),
            track(None, "purchase", 3 * H, anon="a2"),
            track(None, "viewed", 4 * H, anon="a3"),
            identify("u2", 2 * H, plan="pro", trial_ends=at(1 * D + 6 * H)),
            identify("u3", 3 * H, plan="free", trial_ends=at(3 * D + 12 * H)),
            # Stamped after this run and the next: time reaches it in run 4.
            identify("u4", 3 * D + 2 * H, plan="pro"),
            track("u4", "purchase", 3 * D + 3 * H),
            track("u3", "purchase", 5 * H, messageId="dup-1"),
        ],
    ),
    (
        2 * D,
        [
            # a2's earlier purchase now counts for u2.
            {"type": "alias", "userId": "u2", "previousId": "a2", "timestamp": at(1 * D + H)},
            # Late: stamped before run 1, landed now.
            identify("u3", 6 * H, plan="pro"),
            track("u1", "purchase", 7 * H, properties={"placed_at": at(1 * D + 12 * H)}),
            # A second copy of an event already staged: ignored.
            track("u3", "purchase", 9 * H, messageId="dup-1"),
            # u5 links a2 too, later than u2: u2 keeps it while u2 exists.
            identify("u5", 1 * D + 2 * H, anon="a2", plan="free", trial_ends=at(5 * D)),
        ],
    ),
    (
        3 * D,
        [
            # u2 is deleted: its link to a2 is forgotten, so a2 (and its purchase) goes to u5.
            {"type": "delete", "userId": "u2", "timestamp": at(2 * D + H)},
            # A late link for a1 that is earlier than u1's: a1's purchase moves to u6.
            identify("u6", timedelta(minutes=30), anon="a1", plan="pro"),
            # Unset a trait (run 5 brings an older assignment of it, late).
            identify("u1", 2 * D + 2 * H, email=None),
        ],
    ),
    # No new data: only time passes, and reaches u4's calls.
    (4 * D, []),
    (
        5 * D,
        [
            # u2 comes back after the delete with a fresh profile.
            identify("u2", 4 * D + H, plan="free"),
            track("u2", "purchase", 4 * D + 2 * H, properties={"placed_at": at(4 * D)}),
            # Unset a trait.
            identify("u3", 4 * D + 3 * H, plan=None),
            # Late, and older than the unset in run 3: the email stays unset.
            identify("u1", 2 * D + H, email="late@example.com"),
            # Late too: u6's last event stays a1's purchase (2 h), taken from u1 in run 3.
            track("u6", "viewed", H),
        ],
    ),
]


def rows(con: Any, table: str, columns: str) -> list[tuple]:
    return sorted(con.execute(f"select {columns} from {table}").fetchall(), key=repr)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    home = tmp_path_factory.mktemp("incremental")
    workspace = Workspace(home=home / "ws", content_dir=home / "content").ensure()
    fresh = Workspace(home=home / "fresh", content_dir=home / "content").ensure()
    project = DbtWorkspaceProject(workspace)
    fresh_project = DbtWorkspaceProject(fresh)

    observed = []
    for number, (delta, messages) in enumerate(RUNS, start=1):
        as_of = T0 + delta
        # Run 4 redefines pro_plan.
        segments = segment_models("free" if number >= 4 else "pro")
        project.assemble(segments)
        fresh_project.assemble(segments)
        if messages:
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
                    "open_intervals": {
                        name: sorted(con.execute(OPEN_INTERVALS.format(schema=schema)).fetchall())
                        for name, schema in (("incremental", ""), ("full", "fresh."))
                    },
                    "recorded_changes": {
                        name: {
                            r[0]
                            for r in con.execute(
                                f"select user_id from segments.{name}__nudge_changed"
                            ).fetchall()
                        }
                        for name in TIME_SEGMENTS
                        if con.execute(
                            "select count(*) from duckdb_tables() where schema_name = 'segments'"
                            " and table_name = ?",
                            [f"{name}__nudge_changed"],
                        ).fetchone()[0]
                    },
                    "changed_users": {
                        r[0]
                        for r in con.execute(
                            "select user_id from intermediate.int_changed_users"
                        ).fetchall()
                    },
                    "rewritten_users": {
                        r[0]
                        for r in con.execute(
                            "select user_id from intermediate.int_rewritten_users"
                        ).fetchall()
                    },
                    "dim_users": {
                        r[0]: r[1:]
                        for r in con.execute(
                            "select user_id, plan, first_seen_at, email, last_seen_at "
                            "from marts.dim_users"
                        ).fetchall()
                    },
                    "members": {
                        name: {
                            r[0]
                            for r in con.execute(f"select user_id from segments.{name}").fetchall()
                        }
                        for name in SEGMENT_NAMES
                    },
                    "purchases": {
                        r[0]: r[1]
                        for r in con.execute(
                            "select user_id, count(*) from marts.fct_events "
                            "where event = 'purchase' group by user_id"
                        ).fetchall()
                    },
                }
            )
            con.execute("detach fresh")
    manifest = project.manifest()
    observed[-1]["materialized"] = {
        node.name: node.config.materialized for node in manifest.nodes.values()
    }
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


def test_the_timeline_moves_what_it_should(runs: list[dict[str, Any]]) -> None:
    """The comparison above means something only if the data really moved between runs."""
    first, second, third, fourth, fifth = runs
    assert first["purchases"] == {"u1": 1, "u3": 1}
    assert "u4" not in first["dim_users"]
    assert second["purchases"] == {"u1": 2, "u2": 1, "u3": 1}
    assert second["dim_users"]["u3"][0] == "pro"
    assert third["purchases"] == {"u1": 1, "u3": 1, "u5": 1, "u6": 1}
    assert "u2" not in third["dim_users"]
    assert fourth["purchases"]["u4"] == 1 and fourth["dim_users"]["u4"][0] == "pro"
    assert fifth["dim_users"]["u2"][0] == "free" and fifth["purchases"]["u2"] == 1
    assert fifth["dim_users"]["u3"][0] is None
    assert third["dim_users"]["u1"][2] is None and fifth["dim_users"]["u1"][2] is None
    assert fifth["dim_users"]["u6"][3] == T0 + 2 * H


def test_runs_recompute_only_the_users_the_change_touches(runs: list[dict[str, Any]]) -> None:
    assert runs[0]["changed_users"] == {"u1", "u2", "u3", "u4"}
    # The alias and u5's identify touch a2's linkers; u3 and u1 have new calls.
    assert runs[1]["changed_users"] == {"u1", "u2", "u3", "u5"}
    # u2's delete hands a2 to u5; u6's link takes a1 from u1.
    assert runs[2]["changed_users"] == {"u1", "u2", "u5", "u6"}
    # Time alone: only u4, whose calls it reached.
    assert runs[3]["changed_users"] == {"u4"}
    assert runs[4]["changed_users"] == {"u1", "u2", "u3", "u6"}


def test_only_users_whose_past_calls_move_are_recomputed_from_all_their_calls(
    runs: list[dict[str, Any]],
) -> None:
    """fct_events adds the calls new to a build and recomputes from scratch only the users in
    int_rewritten_users: those an anonymous id's link moves to or from, and those deleted."""
    # The alias gives a2 (and its earlier purchase) to u2; u5's later link changes nothing.
    assert runs[1]["rewritten_users"] == {"u2"}
    # u2's delete: u2 forgotten, a2 to u5; u6's earlier link takes a1 from u1.
    assert runs[2]["rewritten_users"] == {"u1", "u2", "u5", "u6"}
    # Time reaching u4's calls, a returning user and a trait unset only add calls.
    assert runs[3]["rewritten_users"] == set()
    assert runs[4]["rewritten_users"] == set()


def test_segments_recomputed_per_user_are_incremental_models() -> None:
    models = segment_models("pro")
    for name in INCREMENTAL_SEGMENTS:
        assert "{{ segment_incremental(" in models[name], name
        assert "changed_users_only(ref('dim_users'), changed_only)" in models[name], name
        assert ("record_segment_changes" in models[name]) == (name in TIME_SEGMENTS), name
        # The pre-hook reads trait values: the model declares it for dbt's graph.
        declared = "-- depends_on: {{ ref('int_user_trait_values') }}" in models[name]
        assert declared == (name in TIME_SEGMENTS), name
    assert "incremental" not in models["emailed"]


def test_segment_memberships_move_with_data_time_and_definitions(
    runs: list[dict[str, Any]],
) -> None:
    members = [r["members"] for r in runs]
    assert members[0]["pro_plan"] == {"u2"}
    assert members[1]["pro_plan"] == {"u2", "u3"}
    assert members[1]["pro_buyers"] == {"u2", "u3"}
    assert members[2]["pro_plan"] == {"u3", "u6"}
    # Run 4: pro_plan now means plan = free, for users whose data did not change too.
    assert members[3]["pro_plan"] == {"u1", "u5"}
    assert members[3]["pro_buyers"] == {"u1", "u5"}
    assert members[3]["recent_buyers"] == {"u4"}


def test_per_user_models_are_built_incrementally(runs: list[dict[str, Any]]) -> None:
    materialized = runs[-1]["materialized"]
    for name in (
        "stg_events",
        "int_identity_map",
        "int_known_users",
        "int_user_trait_values",
        "fct_events",
        "dim_users",
        *INCREMENTAL_SEGMENTS,
    ):
        assert materialized[name] == "incremental", name
    assert materialized["emailed"] == "table"
    assert materialized["fct_segment_memberships"] == "view"


@pytest.mark.parametrize("run", range(len(RUNS)))
def test_open_history_intervals_are_the_current_members(
    runs: list[dict[str, Any]], run: int
) -> None:
    """The incremental history diff looks only at pairs the build may have changed; its open
    intervals must still be exactly the members a from-scratch build opens."""
    intervals = runs[run]["open_intervals"]
    assert intervals["incremental"] == intervals["full"]


def test_time_segments_recompute_only_users_crossing_a_time_boundary(
    runs: list[dict[str, Any]],
) -> None:
    members = [{name: r["members"][name] for name in TIME_SEGMENTS} for r in runs]
    assert members[0]["trial_ending"] == {"u2"}  # trial ends at day 1 + 6 h
    assert members[1]["fresh_orders"] == {"u1"}  # placed at day 1 + 12 h
    assert members[2]["trial_ending"] == {"u3"}
    assert members[3]["recent_buyers"] == {"u4"} and members[3]["trial_ending"] == {"u5"}
    assert members[4]["recent_buyers"] == {"u2"} and members[4]["recent_pro_buyers"] == {"u2"}
    # Run 4, time alone: u4's calls (reached by time) and the trials that start or stop
    # ending within a day between day 3 and day 4 (u3's at 3 d 12 h, u5's at 5 d).
    # recent_pro_buyers reads pro_plan, redefined in run 4: rebuilt for everyone, no record.
    assert runs[3]["recorded_changes"] == {
        "recent_buyers": {"u4"},
        "fresh_orders": {"u4"},
        "trial_ending": {"u3", "u4", "u5"},
    }
    # Run 5: u4's purchase (day 3 + 3 h) leaves the one-day window; the segment reading
    # recent_buyers recomputes whom recent_buyers recomputed.
    assert runs[4]["recorded_changes"]["recent_buyers"] == {"u1", "u2", "u3", "u4", "u6"}
    assert runs[4]["recorded_changes"]["recent_pro_buyers"] == {"u1", "u2", "u3", "u4", "u6"}


def built_once(
    tmp_path: Path, messages: list[dict[str, Any]]
) -> tuple[Workspace, DbtWorkspaceProject, list[Any]]:
    """A new workspace with ``messages`` landed and loaded, built once at T0 + 1 day."""
    workspace = Workspace(home=tmp_path / "ws", content_dir=tmp_path / "content").ensure()
    project = DbtWorkspaceProject(workspace)
    project.assemble(segment_models("pro"))
    land_messages(workspace.events_landing_dir, messages)
    with connect(workspace.warehouse_path) as con:
        ensure_tables(con)
        load_new_files(con, workspace.events_landing_dir)
    built = project.build(T0 + D, exclude="tag:delivery_reports")
    return workspace, project, built


def test_a_full_refresh_rebuilds_the_models_and_keeps_the_logs(tmp_path: Path) -> None:
    """--full-refresh (what a changed model asks for) recomputes every model from the calls,
    but the membership history and the log of definitions are kept as they are: rebuilt, the
    history would forget past intervals and open one for every member again."""
    workspace, project, _ = built_once(tmp_path, [identify("u1", H, plan="pro")])
    land_messages(
        workspace.events_landing_dir,
        [identify("u1", D + H, plan="free"), identify("u2", D + H, plan="pro")],
    )
    with connect(workspace.warehouse_path) as con:
        load_new_files(con, workspace.events_landing_dir)
    project.build(T0 + 2 * D, exclude="tag:delivery_reports")

    def logs() -> tuple[list[tuple], list[tuple]]:
        with connect(workspace.warehouse_path, read_only=True) as con:
            history = con.execute(
                "select user_id, entered_at, exited_at, exit_reason"
                " from marts.fct_segment_membership_history order by all"
            ).fetchall()
            changes = con.execute(
                "select segment, change, changed_at from marts.fct_segment_definition_changes"
                " order by all"
            ).fetchall()
        return history, changes

    before = logs()
    assert before[0] == [
        ("u1", T0 + D, T0 + 2 * D, "left"),
        ("u2", T0 + 2 * D, None, None),
    ]
    with connect(workspace.warehouse_path) as con:  # what an older version of the models left
        con.execute("update marts.dim_users set plan = 'stale'")
        # ... where u2 (no call since) was not a member: the rebuilt segment has u2, so the
        # history must open u2's interval again, though u2 is not among the changed users.
        con.execute(
            "delete from marts.fct_segment_membership_history"
            " where user_id = 'u2' and exited_at is null"
        )
    project.build(T0 + 2 * D, exclude="tag:delivery_reports", full_refresh=True)
    assert logs() == before
    with connect(workspace.warehouse_path, read_only=True) as con:
        # Build numbers go on (keep_replaced_rows marks rows with the next one's number).
        numbers = con.execute(
            "select build_number from intermediate.int_incremental_watermarks order by 1"
        ).fetchall()
    assert numbers == [(1,), (2,), (3,)]
    with connect(workspace.warehouse_path, read_only=True) as con:
        plans = con.execute("select user_id, plan from marts.dim_users order by all").fetchall()
    assert plans == [("u1", "free"), ("u2", "pro")]


HISTORY_UNIQUENESS = "unique_fct_segment_membership_history_intervals"


def test_history_uniqueness_checks_the_rows_a_build_wrote(tmp_path: Path) -> None:
    """The history's uniqueness test counts only the keys of rows stamped with the build's as_of
    (all a build writes): a second copy of an open interval, written as closed by a later build,
    is still caught."""
    workspace, project, built = built_once(tmp_path, [identify("u1", H, plan="pro")])
    assert HISTORY_UNIQUENESS in {n.name for n in built}
    with connect(workspace.warehouse_path) as con:
        con.execute(
            "insert into marts.fct_segment_membership_history "
            "select segment, user_id, entered_at, ?, definition_version, 'left' "
            "from marts.fct_segment_membership_history where segment = 'pro_plan'",
            [T0 + 2 * D],
        )
    with pytest.raises(DbtBuildError, match=HISTORY_UNIQUENESS):
        project.build(T0 + 2 * D, select="fct_segment_membership_history")


def test_an_incremental_model_whose_columns_changed_asks_for_a_full_refresh(
    tmp_path: Path,
) -> None:
    """A table built by an older version of its model (here: dim_users without country) is
    refused with the model's name, the columns and the fix, instead of inserting what fits."""
    workspace, project, _ = built_once(tmp_path, [identify("u1", H, plan="pro")])
    with connect(workspace.warehouse_path) as con:
        con.execute("alter table marts.dim_users drop column country")
    with pytest.raises(DbtBuildError) as refused:
        project.build(T0 + 2 * D, select="dim_users")
    message = str(refused.value)
    assert "model dim_users now computes the columns" in message and "country" in message
    assert "nudge run --full-refresh" in message

    # A log a full refresh keeps is not sent to a full refresh that would refuse it again.
    with connect(workspace.warehouse_path) as con:
        con.execute("alter table marts.fct_segment_membership_history drop column exit_reason")
    with pytest.raises(DbtBuildError) as refused:
        project.build(T0 + 2 * D, select="fct_segment_membership_history", full_refresh=True)
    message = str(refused.value)
    assert "model fct_segment_membership_history now computes the columns" in message
    assert "It is a log that a --full-refresh build keeps" in message
    assert "nudge run --full-refresh" not in message


def test_a_model_reading_a_column_its_table_lacks_asks_for_a_full_refresh(
    tmp_path: Path,
) -> None:
    """A model that merges into its own stored rows reads them before the materialization
    compares columns: a table built before the model gained one (here: trait values without
    value_timestamp) is refused with the model, the column and the fix, not DuckDB's binder
    error."""
    workspace, project, _ = built_once(tmp_path, [identify("u1", H, plan="pro")])
    with connect(workspace.warehouse_path) as con:
        con.execute("alter table intermediate.int_user_trait_values drop column value_timestamp")
    land_messages(workspace.events_landing_dir, [identify("u1", 2 * H, plan="team")])
    with connect(workspace.warehouse_path) as con:
        load_new_files(con, workspace.events_landing_dir)
    with pytest.raises(DbtBuildError) as refused:
        project.build(T0 + 2 * D, select="stg_events int_user_trait_values")
    message = str(refused.value)
    assert "model int_user_trait_values reads the columns value_timestamp" in message
    assert "dbt build --full-refresh --select int_user_trait_values+" in message


def test_event_uniqueness_checks_the_events_a_build_added(tmp_path: Path) -> None:
    """fct_events' uniqueness test counts only the ids of the rows a build added (its kept
    increment): an added call whose id is already in the table is still caught."""
    workspace, project, _ = built_once(
        tmp_path, [identify("u1", H, plan="pro"), track("u1", "viewed", 2 * H, messageId="m-1")]
    )
    with connect(workspace.warehouse_path) as con:
        # A row the next build's new call will duplicate (as a faulty build would leave it).
        con.execute(
            "insert into marts.fct_events select 'm-2', user_id, type, event, name, timestamp, "
            "properties, context, received_at from marts.fct_events where message_id = 'm-1'"
        )
    land_messages(workspace.events_landing_dir, [track("u1", "viewed", 3 * H, messageId="m-2")])
    with connect(workspace.warehouse_path) as con:
        load_new_files(con, workspace.events_landing_dir)
    with pytest.raises(DbtBuildError, match="unique_added_fct_events_message_id"):
        project.build(T0 + 2 * D, exclude="tag:delivery_reports")
    with connect(workspace.warehouse_path) as con:
        added = con.execute("select message_id from marts.fct_events__nudge_increment").fetchall()
    assert added == [("m-2",)]
