"""The journey engine against a real DuckDB file, with the dbt-built inputs written by hand.

Each test runs the engine at a sequence of ``as_of`` instants and checks entries, transitions and
outbox rows: the run semantics of docs/authoring.md ("How a run moves people").
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from journeys import ids
from journeys.engine import JourneyRunSummary, journey_version, run_journeys
from nudge.core.dsl.spec import (
    Attribute,
    AttributeChanged,
    Branch,
    Broadcast,
    Comparison,
    Content,
    DateTrigger,
    EventTrigger,
    Exit,
    Goal,
    Journey,
    Origin,
    Performed,
    PropertyFilter,
    Reentry,
    SegmentEntered,
    SegmentExited,
    Send,
    Split,
    SplitPath,
    Step,
    UpdateAttribute,
    Wait,
    WaitUntil,
    Window,
)
from nudge.core.segments.bucket import bucket_of
from nudge.core.warehouse.journey_controls import set_paused
from nudge.core.warehouse.schema import ensure_tables
from tests.standin_marts import create_user_marts

T0 = datetime(2026, 1, 5, 12, 0, 0)  # a Monday


def at(**delta: float) -> datetime:
    return T0 + timedelta(**delta)


class Warehouse:
    """A warehouse file with hand-made stand-ins for the models dbt builds before the engine."""

    def __init__(self, path: Path) -> None:
        self.con = duckdb.connect(str(path))
        ensure_tables(self.con)
        create_user_marts(self.con)
        self.con.execute("""
            create schema if not exists segments;
            create table marts.fct_events (
                message_id varchar, user_id varchar, type varchar, event varchar, name varchar,
                timestamp timestamp, properties json, received_at timestamp);
            create table marts.fct_segment_memberships (segment varchar, user_id varchar);
            create table marts.fct_segment_membership_history (
                segment varchar, user_id varchar, entered_at timestamp, exited_at timestamp);
        """)
        self.runs = 0

    def user(self, user_id: str, **traits: object) -> None:
        self.con.execute("delete from marts.dim_users where user_id = ?", [user_id])
        self.con.execute("insert into marts.dim_users values (?, ?)", [user_id, json.dumps(traits)])

    def delete_user(self, user_id: str) -> None:
        self.con.execute("delete from marts.dim_users where user_id = ?", [user_id])

    def event(
        self, message_id: str, user_id: str, event: str, timestamp: datetime, **properties: object
    ) -> None:
        self.con.execute(
            "insert into marts.fct_events values (?, ?, 'track', ?, null, ?, ?, ?)",
            [message_id, user_id, event, timestamp, json.dumps(properties), timestamp],
        )

    def segment(self, name: str, members: set[str], as_of: datetime) -> None:
        """What the dbt run at ``as_of`` writes: members, history (entered/exited at as_of)."""
        before = self.members(name)
        for user in members - before:
            self.con.execute(
                "insert into marts.fct_segment_membership_history values (?, ?, ?, null)",
                [name, user, as_of],
            )
        for user in before - members:
            self.con.execute(
                """update marts.fct_segment_membership_history set exited_at = ?
                   where segment = ? and user_id = ? and exited_at is null""",
                [as_of, name, user],
            )
        self.con.execute("delete from marts.fct_segment_memberships where segment = ?", [name])
        self.con.execute(f'create or replace table segments."{name}" (user_id varchar)')
        for user in sorted(members):
            self.con.execute(
                "insert into marts.fct_segment_memberships values (?, ?)", [name, user]
            )
            self.con.execute(f'insert into segments."{name}" values (?)', [user])

    def members(self, name: str) -> set[str]:
        rows = self.con.execute(
            "select user_id from marts.fct_segment_memberships where segment = ?", [name]
        ).fetchall()
        return {u for (u,) in rows}

    def run(
        self, as_of: datetime, *journeys: Journey, run_id: str | None = None
    ) -> JourneyRunSummary:
        self.runs += 1
        content = Content(journeys=journeys)
        return run_journeys(self.con, content, as_of=as_of, run_id=run_id or f"run{self.runs}")

    def entries(self, journey: str) -> list[tuple]:
        return self.con.execute(
            """select user_id, status, current_step, exit_reason from nudge.journey_entries
               where journey = ? order by user_id, started_at""",
            [journey],
        ).fetchall()

    def active(self, journey: str) -> dict[str, str | None]:
        rows = self.con.execute(
            """select user_id, current_step from nudge.journey_entries
               where journey = ? and status = 'active'""",
            [journey],
        ).fetchall()
        return dict(rows)

    def outbox(self, journey: str) -> list[tuple]:
        return self.con.execute(
            "select user_id, step, as_of from nudge.outbox where journey = ? order by all",
            [journey],
        ).fetchall()

    def actions(self, journey: str, user_id: str) -> list[tuple]:
        return self.con.execute(
            """select as_of, action, from_step, to_step from nudge.journey_transitions
               where journey = ? and user_id = ? order by as_of, rowid""",
            [journey, user_id],
        ).fetchall()

    def table_counts(self) -> tuple[int, ...]:
        return tuple(
            self.con.execute(f"select count(*) from {t}").fetchone()[0]
            for t in (
                "nudge.journey_entries",
                "nudge.journey_transitions",
                "nudge.outbox",
                "nudge.journey_trigger_events",
                "raw.events",
            )
        )


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    yield warehouse
    warehouse.con.close()


def journey(name: str = "j", trigger: object = SegmentEntered("s"), steps=(), **options) -> Journey:
    return Journey(name, Origin("test.yml", f"journey {name!r}"), trigger, tuple(steps), **options)


def send(step_id: str, template: str | None = None) -> Step:
    return Step(step_id, Send("email", template or step_id))


def performed(event: str) -> Performed:
    return Performed(event)


def test_duplicate_step_ids_are_refused_naming_the_journey(wh: Warehouse) -> None:
    j = journey("dup", steps=[send("a"), Step("b", Branch(performed("x"), then=(send("a"),)))])
    with pytest.raises(ValueError, match="journey 'dup': step id 'a' is used more than once"):
        wh.run(T0, j)


# --- segment_entered and reentry ------------------------------------------------------------------


def test_segment_entered_admits_at_the_run_that_first_sees_the_membership(wh: Warehouse) -> None:
    j = journey(steps=[send("hello")])
    wh.user("old")
    wh.user("u1")
    wh.user("u2")
    wh.segment("s", {"old"}, at(hours=-1))  # a member before the journey's first run
    wh.segment("s", {"old", "u1"}, T0)  # u1 enters in the journey's first run: it counts
    summary = wh.run(T0, j)
    assert wh.entries("j") == [("u1", "completed", None, None)]
    assert wh.outbox("j") == [("u1", "hello", T0)]
    assert summary.journeys["j"].entered == 1
    assert summary.journeys["j"].sends_planned == 1
    assert summary.journeys["j"].completed == 1

    wh.segment("s", {"old", "u1", "u2"}, at(hours=1))
    wh.run(at(hours=1), j)
    assert [e[0] for e in wh.entries("j")] == ["u1", "u2"]


def test_entry_rows_carry_stable_ids_and_version(wh: Warehouse) -> None:
    j = journey(steps=[Step("pause", Wait(timedelta(days=1)))])
    wh.user("u1")
    wh.segment("s", {"u1"}, T0)
    wh.run(T0, j)
    row = wh.con.execute(
        """select entry_id, trigger_key, started_at, step_reached_at, next_wake_at,
                  journey_version, holdout from nudge.journey_entries"""
    ).fetchone()
    entry_id, trigger_key, started, reached, wake, version, holdout = row
    assert entry_id == ids.entry_id("j", "u1", trigger_key)
    assert (started, reached, wake) == (T0, T0, at(days=1))
    assert version == journey_version(j)
    assert holdout is False


@pytest.mark.parametrize(
    ("reentry", "expected_entries"),
    [(Reentry("never"), 1), (Reentry("always"), 3), (Reentry("after", timedelta(days=2)), 2)],
)
def test_reentry(wh: Warehouse, reentry: Reentry, expected_entries: int) -> None:
    """The user re-enters the segment at +0, +1d and +2d (leaving between)."""
    j = journey(steps=[send("hello")], reentry=reentry)
    wh.user("u1")
    for day in range(3):
        wh.segment("s", {"u1"}, at(days=day))
        wh.run(at(days=day), j)
        wh.segment("s", set(), at(days=day, hours=12))
        wh.run(at(days=day, hours=12), j)
    assert len(wh.entries("j")) == expected_entries
    assert len(wh.outbox("j")) == expected_entries


def test_reentry_always_never_starts_a_second_active_entry(wh: Warehouse) -> None:
    j = journey(
        trigger=EventTrigger("ping"),
        steps=[Step("pause", Wait(timedelta(days=1))), send("hello")],
        reentry=Reentry("always"),
    )
    wh.user("u1")
    wh.event("m1", "u1", "ping", T0)
    wh.run(T0, j)
    wh.event("m2", "u1", "ping", at(hours=1))  # while the first entry is active: no new entry
    wh.run(at(hours=1), j)
    assert len(wh.entries("j")) == 1
    wh.run(at(days=1), j)  # first entry completes
    wh.event("m3", "u1", "ping", at(days=1, hours=1))
    wh.run(at(days=1, hours=1), j)
    assert [e[1] for e in wh.entries("j")] == ["completed", "active"]


# --- event triggers ---------------------------------------------------------------------------------


def test_event_trigger_takes_the_earliest_event_and_dedups_by_message_id(wh: Warehouse) -> None:
    j = journey(trigger=EventTrigger("ordered"), steps=[send("thanks")], reentry=Reentry("always"))
    wh.user("u1")
    wh.event("late", "u1", "ordered", at(minutes=-1), order="B")
    wh.event("early", "u1", "ordered", at(minutes=-5), order="A")
    wh.event("other", "u1", "viewed", at(minutes=-5))
    wh.run(T0, j)
    row = wh.con.execute("select trigger_key from nudge.journey_entries").fetchone()
    assert row == ("early",)
    props = wh.con.execute("select event_properties from nudge.outbox").fetchone()[0]
    assert json.loads(props) == {"order": "A"}
    considered = wh.con.execute(
        "select message_id from nudge.journey_trigger_events order by 1"
    ).fetchall()
    assert considered == [("early",), ("late",)]
    # later runs never fire the same events again; a new one starts a new entry
    wh.run(at(hours=1), j)
    assert len(wh.entries("j")) == 1
    wh.event("next", "u1", "ordered", at(hours=2))
    wh.run(at(hours=2), j)
    assert len(wh.entries("j")) == 2


def test_event_older_than_max_event_age_does_not_fire(wh: Warehouse) -> None:
    j = journey(
        trigger=EventTrigger("ordered"), steps=[send("thanks")], max_event_age=timedelta(hours=1)
    )
    wh.user("u1")
    wh.user("u2")
    wh.event("old", "u1", "ordered", at(hours=-2))
    wh.event("fresh", "u2", "ordered", at(minutes=-59))
    wh.run(T0, j)
    assert [e[0] for e in wh.entries("j")] == ["u2"]
    # The old event is not even read: runs only read the last max_event_age of events.
    considered = wh.con.execute("select message_id from nudge.journey_trigger_events").fetchall()
    assert considered == [("fresh",)]
    wh.run(at(hours=1), j)
    assert [e[0] for e in wh.entries("j")] == ["u2"]


def test_event_trigger_where_filters_on_properties(wh: Warehouse) -> None:
    where = (PropertyFilter(("total",), Comparison("gte", 100)),)
    j = journey(trigger=EventTrigger("ordered", where=where), steps=[send("vip")])
    wh.user("u1")
    wh.user("u2")
    wh.event("small", "u1", "ordered", at(minutes=-1), total=20)
    wh.event("big", "u2", "ordered", at(minutes=-1), total=250)
    wh.run(T0, j)
    assert [e[0] for e in wh.entries("j")] == ["u2"]


# --- moving through steps ---------------------------------------------------------------------------


def test_wait_counts_from_the_run_that_reached_it(wh: Warehouse) -> None:
    j = journey(steps=[Step("pause", Wait(timedelta(days=2))), send("after")])
    wh.user("u1")
    wh.segment("s", {"u1"}, T0)
    wh.run(T0, j)
    wh.run(at(days=1, hours=23), j)
    assert wh.outbox("j") == []
    wh.run(at(days=2, hours=5), j)  # first run at or after reached + 2d
    assert wh.outbox("j") == [("u1", "after", at(days=2, hours=5))]


def test_send_send_branch_send_all_happen_in_one_run(wh: Warehouse) -> None:
    branch = Branch(
        performed("project_created"),
        then=(send("tips"),),
        otherwise=(send("nudge"),),
    )
    j = journey(steps=[send("one"), send("two"), Step("check", branch), send("last")])
    wh.user("u1")
    wh.user("u2")
    wh.event("p1", "u1", "project_created", at(hours=-1))
    wh.segment("s", {"u1", "u2"}, T0)
    wh.run(T0, j)
    assert wh.outbox("j") == [
        ("u1", "last", T0), ("u1", "one", T0), ("u1", "tips", T0), ("u1", "two", T0),
        ("u2", "last", T0), ("u2", "nudge", T0), ("u2", "one", T0), ("u2", "two", T0),
    ]  # fmt: skip
    assert [a[1] for a in wh.actions("j", "u1")] == [
        "entered", "sent", "sent", "branched", "sent", "sent", "completed",
    ]  # fmt: skip
    key, delivery, entry = wh.con.execute(
        "select idempotency_key, delivery_id, entry_id from nudge.outbox where step = 'one' and user_id = 'u1'"
    ).fetchone()
    assert key == ids.idempotency_key("j", entry, "one")
    assert delivery == ids.delivery_id("j", entry, "one")


def test_step_if_skips_the_step(wh: Warehouse) -> None:
    guarded = Step("vip_only", Send("email", "vip"), if_=Attribute("plan", Comparison("eq", "pro")))
    j = journey(steps=[guarded, send("all")])
    wh.user("u1", plan="pro")
    wh.user("u2", plan="free")
    wh.segment("s", {"u1", "u2"}, T0)
    wh.run(T0, j)
    assert wh.outbox("j") == [("u1", "all", T0), ("u1", "vip_only", T0), ("u2", "all", T0)]
    assert "skipped_if" in [a[1] for a in wh.actions("j", "u2")]


def test_exit_step_ends_the_entry(wh: Warehouse) -> None:
    j = journey(steps=[send("a"), Step("stop", Exit()), send("never")])
    wh.user("u1")
    wh.segment("s", {"u1"}, T0)
    wh.run(T0, j)
    assert wh.entries("j") == [("u1", "exited", "stop", "exit_step")]
    assert wh.outbox("j") == [("u1", "a", T0)]


def test_wait_until_continues_when_the_condition_holds_or_exits_on_timeout(wh: Warehouse) -> None:
    hold = WaitUntil(performed("project_created"), timeout=timedelta(days=3))
    j = journey(steps=[Step("hold", hold), send("congrats")])
    for user in ("u1", "u2", "u3"):
        wh.user(user)
    wh.event("early", "u3", "project_created", at(hours=-1))  # holds on arrival: no wait
    wh.segment("s", {"u1", "u2", "u3"}, T0)
    wh.run(T0, j)
    assert wh.outbox("j") == [("u3", "congrats", T0)]
    wh.event("p1", "u1", "project_created", at(days=1))
    wh.run(at(days=1, hours=1), j)
    wh.run(at(days=3), j)
    assert wh.entries("j") == [
        ("u1", "completed", None, None),
        ("u2", "exited", "hold", "timeout"),
        ("u3", "completed", None, None),
    ]
    assert wh.outbox("j")[0] == ("u1", "congrats", at(days=1, hours=1))


def test_wait_until_on_timeout_continue(wh: Warehouse) -> None:
    hold = WaitUntil(performed("never_happens"), timeout=timedelta(hours=6), on_timeout="continue")
    j = journey(steps=[Step("hold", hold), send("anyway")])
    wh.user("u1")
    wh.segment("s", {"u1"}, T0)
    wh.run(T0, j)
    wh.run(at(hours=6), j)
    assert wh.outbox("j") == [("u1", "anyway", at(hours=6))]


def test_split_sends_users_down_stable_hash_ranges(wh: Warehouse) -> None:
    paths = (
        SplitPath(30, (send("variant_a"),)),
        SplitPath(70, (send("variant_b"),)),
    )
    j = journey(steps=[Step("ab", Split(paths)), send("after")])
    users = {f"u{i}" for i in range(40)}
    for user in users:
        wh.user(user)
    wh.segment("s", users, T0)
    wh.run(T0, j)
    got = dict(
        wh.con.execute(
            "select user_id, step from nudge.outbox where step like 'variant%'"
        ).fetchall()
    )
    expected = {u: "variant_a" if bucket_of("j.ab", u) < 30 else "variant_b" for u in users}
    assert got == expected
    assert len(set(got.values())) == 2
    assert wh.con.execute("select count(*) from nudge.outbox where step = 'after'").fetchone() == (
        40,
    )


def test_window_waits_for_the_next_opening_in_the_users_time_zone(wh: Warehouse) -> None:
    office = Window(("mon", "tue", "wed", "thu", "fri"), "09:00", "17:00", "timezone", "UTC")
    j = journey(steps=[Step("office", office), send("hello")])
    wh.user("ny", timezone="America/New_York")  # T0 = 07:00 in New York: wait until 09:00
    wh.user("paris", timezone="Europe/Paris")  # T0 = 13:00 in Paris: inside
    wh.user("nowhere", timezone="Not/AZone")  # unknown zone: the default, UTC 12:00 inside
    wh.segment("s", {"ny", "paris", "nowhere"}, T0)
    wh.run(T0, j)
    assert {u for u, _, _ in wh.outbox("j")} == {"paris", "nowhere"}
    wake = wh.con.execute(
        "select next_wake_at from nudge.journey_entries where user_id = 'ny'"
    ).fetchone()
    assert wake == (at(hours=2),)
    wh.run(at(hours=1, minutes=59), j)
    assert len(wh.outbox("j")) == 2
    wh.run(at(hours=2), j)
    assert ("ny", "hello", at(hours=2)) in wh.outbox("j")


def test_window_is_daylight_saving_correct(wh: Warehouse) -> None:
    office = Window(("sun",), "09:00", "10:00", "timezone", "UTC")
    j = journey(steps=[Step("office", office), send("hello")])
    wh.user("ny", timezone="America/New_York")
    start = datetime(2026, 3, 7, 12, 0)  # Saturday; DST starts Sunday March 8 in New York
    wh.segment("s", {"ny"}, start)
    wh.run(start, j)
    wake = wh.con.execute("select next_wake_at from nudge.journey_entries").fetchone()[0]
    assert wake == datetime(2026, 3, 8, 13, 0)  # 09:00 EDT (UTC-4), not 14:00 (EST)


def test_update_attribute_writes_an_identify_once(wh: Warehouse) -> None:
    j = journey(steps=[Step("mark", UpdateAttribute("onboarded", True))])
    wh.user("u1")
    wh.segment("s", {"u1"}, T0)
    wh.run(T0, j)
    wh.run(T0, j)
    rows = wh.con.execute("select type, user_id, traits, timestamp from raw.events").fetchall()
    assert [(t, u, json.loads(tr), ts) for t, u, tr, ts in rows] == [
        ("identify", "u1", {"onboarded": True}, T0)
    ]


# --- exits and goals -------------------------------------------------------------------------------


def test_exit_when_holding_at_admission_leaves_at_once_unmessaged(wh: Warehouse) -> None:
    j = journey(steps=[send("hello")], exit_when=performed("account_closed"))
    wh.user("u1")
    wh.user("u2")
    wh.event("c1", "u1", "account_closed", at(hours=-1))
    wh.segment("s", {"u1", "u2"}, T0)
    summary = wh.run(T0, j)
    assert wh.entries("j") == [
        ("u1", "exited", "hello", "exit_when"),
        ("u2", "completed", None, None),
    ]
    assert wh.outbox("j") == [("u2", "hello", T0)]
    assert summary.journeys["j"].exited == 1


def test_exit_when_checked_every_run(wh: Warehouse) -> None:
    j = journey(
        steps=[Step("pause", Wait(timedelta(days=1))), send("x")], exit_when=performed("quit")
    )
    wh.user("u1")
    wh.segment("s", {"u1"}, T0)
    wh.run(T0, j)
    wh.event("q", "u1", "quit", at(hours=20))
    wh.run(at(days=1), j)
    assert wh.entries("j") == [("u1", "exited", "pause", "exit_when")]
    assert wh.outbox("j") == []


@pytest.mark.parametrize(("lost", "expected"), [(True, "exited"), (False, "completed")])
def test_exit_on_trigger_lost(wh: Warehouse, lost: bool, expected: str) -> None:
    j = journey(
        steps=[Step("pause", Wait(timedelta(days=1))), send("x")], exit_on_trigger_lost=lost
    )
    wh.user("u1")
    wh.segment("s", {"u1"}, T0)
    wh.run(T0, j)
    wh.segment("s", set(), at(hours=5))
    wh.run(at(hours=5), j)
    wh.run(at(days=1), j)
    assert wh.entries("j")[0][1] == expected
    assert len(wh.outbox("j")) == (0 if lost else 1)


def test_goal_converts_within_the_window_and_exits(wh: Warehouse) -> None:
    goal = Goal(performed("ordered"), within=timedelta(days=2))
    j = journey(steps=[Step("pause", Wait(timedelta(days=5))), send("x")], goal=goal)
    wh.user("u1")
    wh.user("u2")
    wh.segment("s", {"u1", "u2"}, T0)
    wh.run(T0, j)
    wh.event("o1", "u1", "ordered", at(days=1))
    summary = wh.run(at(days=1), j)
    wh.event("o2", "u2", "ordered", at(days=3))  # too late to count
    wh.run(at(days=3), j)
    assert summary.journeys["j"].converted == 1
    assert wh.entries("j") == [
        ("u1", "exited", "pause", "converted"),
        ("u2", "active", "pause", None),
    ]
    converted = wh.con.execute(
        "select user_id, converted_at from nudge.journey_entries where converted_at is not null"
    ).fetchall()
    assert converted == [("u1", at(days=1))]


def test_goal_without_exit_marks_converted_and_keeps_going(wh: Warehouse) -> None:
    goal = Goal(performed("ordered"), exit=False)
    j = journey(steps=[Step("pause", Wait(timedelta(days=1))), send("x")], goal=goal)
    wh.user("u1")
    wh.segment("s", {"u1"}, T0)
    wh.run(T0, j)
    wh.event("o1", "u1", "ordered", at(hours=1))
    wh.run(at(hours=1), j)
    wh.run(at(days=1), j)
    assert wh.entries("j") == [("u1", "completed", None, None)]
    assert [a[1] for a in wh.actions("j", "u1")].count("converted") == 1


def test_deleted_user_leaves(wh: Warehouse) -> None:
    j = journey(
        steps=[Step("pause", Wait(timedelta(days=1))), send("x")], exit_on_trigger_lost=False
    )
    wh.user("u1")
    wh.segment("s", {"u1"}, T0)
    wh.run(T0, j)
    wh.delete_user("u1")
    wh.run(at(days=1), j)
    assert wh.entries("j") == [("u1", "exited", "pause", "user_deleted")]


# --- reruns, holdout --------------------------------------------------------------------------------


def test_rerunning_the_same_as_of_adds_nothing(wh: Warehouse) -> None:
    j = journey(
        trigger=EventTrigger("ordered"),
        steps=[send("a"), Step("pause", Wait(timedelta(days=1))), send("b")],
        reentry=Reentry("always"),
    )
    wh.user("u1")
    wh.event("m1", "u1", "ordered", T0)
    wh.run(T0, j, run_id="r1")
    first = wh.table_counts()
    again = wh.run(T0, j, run_id="r1")
    assert wh.table_counts() == first
    assert again.journeys["j"].entered == 0 and again.journeys["j"].sends_planned == 0
    wh.run(at(days=1), j, run_id="r2")
    wh.run(at(days=1), j, run_id="r2")
    assert len(wh.outbox("j")) == 2


def test_a_failed_journey_run_rolls_back_and_reruns_cleanly(wh: Warehouse) -> None:
    bad = Window(("mon",), "9am", "17:00")  # fails when someone reaches it, after the sends
    j = journey(steps=[send("a"), Step("office", bad)])
    wh.user("u1")
    wh.segment("s", {"u1"}, T0)
    with pytest.raises(ValueError, match=r"step 'office'.*9am"):
        wh.run(T0, j)
    assert wh.table_counts() == (0, 0, 0, 0, 0)
    good = journey(steps=[send("a"), Step("office", Window(("mon",), "09:00", "17:00"))])
    wh.run(T0, good)
    assert wh.outbox("j") == [("u1", "a", T0)]


def test_holdout_users_move_but_their_sends_are_flagged(wh: Warehouse) -> None:
    j = journey(steps=[send("hello")], holdout_percent=25)
    users = {f"u{i}" for i in range(40)}
    for user in users:
        wh.user(user)
    wh.segment("s", users, T0)
    wh.run(T0, j)
    rows = wh.con.execute("select user_id, holdout from nudge.outbox").fetchall()
    assert len(rows) == 40
    flagged = {u for u, holdout in rows if holdout}
    assert flagged == {u for u in users if bucket_of("j", u) < 25}
    assert 0 < len(flagged) < 40
    entries = wh.con.execute("select user_id from nudge.journey_entries where holdout").fetchall()
    assert {u for (u,) in entries} == flagged


# --- other triggers -----------------------------------------------------------------------------------


def test_segment_exited_trigger(wh: Warehouse) -> None:
    j = journey(trigger=SegmentExited("s"), steps=[send("bye")])
    wh.user("u1")
    wh.segment("s", {"u1"}, T0)
    wh.run(T0, j)
    wh.segment("s", set(), at(hours=1))
    wh.run(at(hours=1), j)
    assert wh.outbox("j") == [("u1", "bye", at(hours=1))]


def test_attribute_changed_fires_on_each_new_value(wh: Warehouse) -> None:
    j = journey(
        trigger=AttributeChanged("plan"), steps=[send("plan_changed")], reentry=Reentry("always")
    )
    only_pro = journey(
        "pro", trigger=AttributeChanged("plan", to="pro", has_to=True), steps=[send("welcome_pro")]
    )
    wh.user("u1", plan="free")
    wh.user("u2")
    wh.run(T0, j, only_pro)  # a first value counts
    wh.run(at(hours=1), j, only_pro)  # unchanged: nothing
    wh.user("u1", plan="pro")
    wh.run(at(hours=2), j, only_pro)
    assert wh.outbox("j") == [("u1", "plan_changed", T0), ("u1", "plan_changed", at(hours=2))]
    assert wh.outbox("pro") == [("u1", "welcome_pro", at(hours=2))]


def test_date_trigger_fires_once_per_trait_value_at_local_time(wh: Warehouse) -> None:
    trigger = DateTrigger(
        "trial_ends_at", offset=-timedelta(days=3), at="09:00", timezone_attribute="tz"
    )
    j = journey(trigger=trigger, steps=[send("trial_ending")], reentry=Reentry("always"))
    wh.user("u1", trial_ends_at="2026-01-10T18:00:00Z", tz="America/New_York")
    wh.user("u2", trial_ends_at=1768867200, tz="UTC")  # unix seconds: 2026-01-20T00:00Z
    due = datetime(2026, 1, 7, 14, 0)  # 2026-01-07 09:00 in New York
    wh.run(due - timedelta(minutes=1), j)
    assert wh.outbox("j") == []
    wh.run(due, j)
    wh.run(due + timedelta(hours=1), j)
    assert wh.outbox("j") == [("u1", "trial_ending", due)]
    u2_due = datetime(2026, 1, 17, 9, 0)
    wh.run(u2_due, j)
    assert wh.outbox("j")[-1] == ("u2", "trial_ending", u2_due)
    wh.user("u1", trial_ends_at="2026-01-10T18:00:00Z", tz="America/New_York", plan="pro")
    wh.run(u2_due + timedelta(days=1), j)  # same trait value: never again
    assert len(wh.outbox("j")) == 2


def test_date_trigger_turned_away_when_due_is_not_offered_the_same_value_again(
    wh: Warehouse,
) -> None:
    """A date fires at the first run where it is due, once per trait value (docs/authoring.md)."""
    j = journey(
        trigger=DateTrigger("renews_at"),
        steps=[send("renewal")],
        entry_filter=Attribute("plan", Comparison("eq", "pro")),
        reentry=Reentry("always"),
    )
    wh.user("u1", renews_at="2026-01-02T00:00:00Z", plan="free")
    wh.user("u2", renews_at="2026-01-02T00:00:00Z", plan="pro")
    due = datetime(2026, 1, 2)
    wh.run(due, j)
    assert wh.outbox("j") == [("u2", "renewal", due)]
    considered = wh.con.execute(
        "select message_id from nudge.journey_trigger_events order by 1"
    ).fetchall()
    assert considered == [
        ('date:renews_at:"u1":"2026-01-02T00:00:00Z"',),
        ('date:renews_at:"u2":"2026-01-02T00:00:00Z"',),
    ]
    wh.user("u1", renews_at="2026-01-02T00:00:00Z", plan="pro")  # passes the filter now
    wh.run(due + timedelta(hours=1), j)
    assert len(wh.outbox("j")) == 1
    wh.user("u1", renews_at="2026-01-03T00:00:00Z", plan="pro")  # a new value fires again
    wh.run(due + timedelta(days=1), j)
    assert wh.outbox("j") == [
        ("u1", "renewal", due + timedelta(days=1)),
        ("u2", "renewal", due),
    ]


def test_broadcast_fires_once_for_the_members_at_that_run(wh: Warehouse) -> None:
    j = journey(
        trigger=Broadcast("s", at=at(hours=1)), steps=[send("news")], reentry=Reentry("always")
    )
    wh.user("u1")
    wh.user("u2")
    wh.segment("s", {"u1"}, T0)
    wh.run(T0, j)
    wh.run(at(hours=1), j)
    wh.segment("s", {"u1", "u2"}, at(hours=2))
    wh.run(at(hours=2), j)
    assert wh.outbox("j") == [("u1", "news", at(hours=1))]


def wait(step_id: str, **delta: float) -> Step:
    return Step(step_id, Wait(timedelta(**delta)))


def test_a_step_removed_by_an_edit_sends_its_people_to_the_next_surviving_step(
    wh: Warehouse,
) -> None:
    old = journey(
        steps=[send("s1"), wait("w1", days=1), send("s2"), wait("w2", days=1), send("s3")]
    )
    new = journey(steps=[send("s1"), wait("w2", days=1), send("s3")])
    cut = journey(steps=[send("s1")])
    wh.user("u1")
    wh.user("u2")
    wh.segment("s", {"u1", "u2"}, T0)
    wh.run(T0, old)
    wh.run(at(hours=1), new)
    assert wh.active("j") == {"u1": "w2", "u2": "w2"}
    assert wh.actions("j", "u1")[-1] == (at(hours=1), "moved", "w1", "w2")
    wh.run(at(hours=2), cut)  # nothing after w2 survives
    assert wh.entries("j") == [
        ("u1", "exited", "w2", "step_removed"),
        ("u2", "exited", "w2", "step_removed"),
    ]
    assert [s for _, s, _ in wh.outbox("j")] == ["s1", "s1"]


def test_a_paused_journey_admits_moves_and_plans_nothing_until_resumed(wh: Warehouse) -> None:
    j = journey(steps=[send("a"), wait("pause", days=1), send("b")])
    wh.user("u1")
    wh.segment("s", {"u1"}, T0)
    wh.run(T0, j)
    set_paused(wh.con, "j", paused=True, at=T0)
    wh.user("u2")
    wh.segment("s", {"u1", "u2"}, at(days=1))
    before = wh.table_counts()
    summary = wh.run(at(days=1), j)
    assert wh.table_counts() == before
    assert summary.journeys["j"].waiting == 1
    set_paused(wh.con, "j", paused=False, at=T0)
    wh.run(at(days=1, minutes=1), j)
    assert wh.outbox("j") == [("u1", "a", T0), ("u1", "b", at(days=1, minutes=1))]


def test_transitions_are_numbered_in_a_fixed_order(wh: Warehouse) -> None:
    j = journey(steps=[send("a"), send("b")])
    for user in ("u3", "u1", "u2"):
        wh.user(user)
    wh.segment("s", {"u1", "u2", "u3"}, T0)
    wh.run(T0, j)
    rows = wh.con.execute(
        "select seq, entry_id, action from nudge.journey_transitions order by seq"
    ).fetchall()
    assert [seq for seq, _, _ in rows] == list(range(1, len(rows) + 1))
    entered = [entry for _, entry, action in rows if action == "entered"]
    assert entered == sorted(entered)
