"""``window``: people move on when their local clock is inside the window's days and hours."""

from __future__ import annotations

from datetime import datetime

from journeys.context import JourneyRun
from journeys.program import Instruction
from journeys.sqltext import user_zone_sql
from journeys.steps.at_step import move_all, set_wake
from journeys.steps.kind import StepEngine, StepView
from journeys.windows import window_state
from nudge.core.clock import to_utc_aware, user_zone
from nudge.core.dsl.spec import Window


def advance(run: JourneyRun, ins: Instruction) -> None:
    window = ins.step.action
    assert isinstance(window, Window)
    where = f"journey {run.journey.name!r}, step {ins.id!r}"
    zone = user_zone_sql("u.traits", window.timezone_attribute, window.default_timezone)
    run.execute(
        f"""create or replace temp table _nj_entry_zones as
            select e.entry_id, {zone} as zone
            from nudge.journey_entries e left join marts.dim_users u using (user_id)
            where {run.active_at(ins.id)}"""
    )
    zones = [z for (z,) in run.execute("select distinct zone from _nj_entry_zones").fetchall()]
    # A name the warehouse knows and Python's zone database does not (DuckDB's "PST") is the
    # default zone, as quiet hours and a name neither knows are: one person's trait must not
    # stop the journey for everyone.
    states = [
        (z, *window_state(window, user_zone(z, window.default_timezone).key, run.as_of, where))
        for z in zones
    ]
    run.execute(
        "create or replace temp table _nj_zones (zone varchar, inside boolean, opens timestamp)"
    )
    run.con.executemany("insert into _nj_zones values (?, ?, ?)", states)
    zone_of = "(select z.zone from _nj_entry_zones z where z.entry_id = e.entry_id)"
    inside = f"(select inside from _nj_zones where zone = {zone_of})"
    move_all(run, ins, ins.next_id, "window", where=inside)
    set_wake(run, ins, f"(select opens from _nj_zones where zone = {zone_of})")


def outlook(view: StepView, ins: Instruction, wake: datetime | None) -> str:
    window = ins.step.action
    assert isinstance(window, Window)
    name = view.traits.get(window.timezone_attribute) if window.timezone_attribute else None
    zone = user_zone(name, window.default_timezone)
    days = ",".join(window.days) if window.days else "every day"
    spec = f"{days} {window.start}-{window.end} {zone.key}"
    text = f"step {ins.id} waits for its window: {spec}"
    if wake is None:
        return f"{text}; open now, moves on at the next run"
    local = to_utc_aware(wake).astimezone(zone)
    return f"{text}; next opening {view.when(wake)} = {local:%Y-%m-%d %H:%M} {zone.key}"


ENGINE = StepEngine(Window, advance, outlook)
