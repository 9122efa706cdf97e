"""Advancing active entries through the program, one set-based statement group per step.

A sweep visits the instructions in program order; since every move goes forward in that order,
one sweep moves each person through consecutive steps until a step makes them wait or they
finish. A sweep visits only steps with people not handled there yet; another sweep would run
only if a move went backwards (none does), and too many raise.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfoNotFoundError

from journeys.context import JourneyRun
from journeys.ids import sql_digest
from journeys.moves import apply_moves, stage_moves
from journeys.program import Instruction
from journeys.sqltext import sql_string, user_zone_sql
from journeys.windows import window_state
from nudge.core.dsl.spec import (
    All,
    Branch,
    Condition,
    EventTrigger,
    Not,
    RandomBucket,
    Send,
    UpdateAttribute,
    Wait,
    WaitUntil,
    Window,
)

OUTBOX_COLUMNS = """idempotency_key, delivery_id, run_id, as_of, entry_id, journey, step, user_id,
    channel, template, topic, transactional, holdout, event_properties, created_at, journey_version"""


def advance(run: JourneyRun) -> None:
    """Visit, in program order, every step that has active entries not handled there yet.

    A step is visited when people wait there at the start and again whenever people arrive;
    handling the same people at the same step twice in one run moves nobody (every handler is a
    function of who is there and of the run's instant), so nothing else needs a visit.
    """
    occupied = run.execute(
        """select distinct e.current_step from nudge.journey_entries e
           where e.journey = ? and e.status = 'active' and e.current_step is not null""",
        [run.journey.name],
    ).fetchall()
    run.arrivals.update(step for (step,) in occupied)
    for _ in range(len(run.program.instructions) + 2):
        if not run.arrivals:
            return
        for ins in run.program.instructions:
            if ins.id in run.arrivals:
                run.arrivals.discard(ins.id)
                _visit(run, ins)
    raise RuntimeError(f"journey {run.journey.name!r}: entries still moving after every sweep")


def _visit(run: JourneyRun, ins: Instruction) -> None:
    if ins.step.if_ is not None:
        _skip_failing_if(run, ins)
    HANDLERS[ins.kind](run, ins)


def _lit(value: str | None) -> str:
    return "null" if value is None else sql_string(value)


def _move_all(
    run: JourneyRun,
    ins: Instruction,
    to_step: str | None,
    action: str,
    detail: str = "null",
    where: str = "true",
    exit_reason: str | None = None,
) -> None:
    """Move the entries at ``ins`` satisfying ``where`` to ``to_step`` (or out, with a reason)."""
    end_status = None if exit_reason is None else "exited"
    stage_moves(
        run,
        f"""select e.entry_id, {_lit(to_step)} as to_step, {sql_string(action)} as action,
                   {detail} as detail, {_lit(end_status)} as end_status,
                   {_lit(exit_reason)} as exit_reason
            from nudge.journey_entries e where {run.active_at(ins.id)} and ({where})""",
    )
    apply_moves(run)


def _in(run: JourneyRun, ins: Instruction, condition: Condition) -> str:
    """SQL predicate on ``e``, an entry at ``ins``: ``condition`` holds for it (for its user,
    unless the condition is scoped to the entry)."""
    return run.entry_holds(condition, run.active_entries(run.active_at(ins.id)))


def _skip_failing_if(run: JourneyRun, ins: Instruction) -> None:
    """A user who fails a step's ``if`` on reaching it skips the step."""
    reached_now = f"e.step_reached_at = {_ts(run)}"
    _move_all(
        run,
        ins,
        ins.next_id,
        "skipped_if",
        where=f"{reached_now} and not {_in(run, ins, ins.step.if_)}",
    )


def _ts(run: JourneyRun) -> str:
    return f"timestamp '{run.as_of.isoformat(sep=' ')}'"


def _send(run: JourneyRun, ins: Instruction) -> None:
    send = ins.step.action
    assert isinstance(send, Send)
    journey = sql_string(run.journey.name)
    step = sql_string(ins.id)
    props = "null"
    if isinstance(run.journey.trigger, EventTrigger):
        props = """(select any_value(f.properties) from marts.fct_events f
                    where f.message_id = e.trigger_key)"""
    run.execute(
        f"""insert or ignore into nudge.outbox ({OUTBOX_COLUMNS})
            select {sql_digest(journey, "e.entry_id", step)},
                   {sql_digest("'delivery'", journey, "e.entry_id", step)},
                   ?, ?, e.entry_id, {journey}, {step}, e.user_id, ?, ?, ?, ?, e.holdout,
                   {props}, ?, ?
            from nudge.journey_entries e where {run.active_at(ins.id)}
            order by e.entry_id""",
        [
            run.run_id,
            run.as_of,
            send.channel,
            send.template,
            send.topic,
            send.transactional,
            run.as_of,
            run.version,
        ],
    )
    key = sql_digest(journey, "e.entry_id", step)
    _move_all(run, ins, ins.next_id, "sent", detail=key)


def _wait(run: JourneyRun, ins: Instruction) -> None:
    wait = ins.step.action
    assert isinstance(wait, Wait)
    due = f"e.step_reached_at + {_interval(wait.duration)}"
    _move_all(run, ins, ins.next_id, "waited", where=f"{due} <= {_ts(run)}")
    _set_wake(run, ins, due)


def _wait_until(run: JourneyRun, ins: Instruction) -> None:
    wait = ins.step.action
    assert isinstance(wait, WaitUntil)
    met = _in(run, ins, wait.condition)
    _move_all(run, ins, ins.next_id, "waited", "'condition'", met)
    timeout = f"e.step_reached_at + {_interval(wait.timeout)}"
    timed_out = f"{timeout} <= {_ts(run)}"
    if wait.on_timeout == "continue":
        _move_all(run, ins, ins.next_id, "waited", "'timeout'", timed_out)
    else:
        _move_all(run, ins, None, "exited", "'timeout'", timed_out, "timeout")
    _set_wake(run, ins, timeout)


def _window(run: JourneyRun, ins: Instruction) -> None:
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
    try:
        states = [(z, *window_state(window, z, run.as_of, where)) for z in zones]
    except ZoneInfoNotFoundError as error:
        raise ValueError(f"{where}: unknown time zone {error}") from None
    run.execute(
        "create or replace temp table _nj_zones (zone varchar, inside boolean, opens timestamp)"
    )
    run.con.executemany("insert into _nj_zones values (?, ?, ?)", states)
    zone_of = "(select z.zone from _nj_entry_zones z where z.entry_id = e.entry_id)"
    inside = f"(select inside from _nj_zones where zone = {zone_of})"
    _move_all(run, ins, ins.next_id, "window", where=inside)
    _set_wake(run, ins, f"(select opens from _nj_zones where zone = {zone_of})")


def _branch(run: JourneyRun, ins: Instruction) -> None:
    branch = ins.step.action
    assert isinstance(branch, Branch)
    holds = _in(run, ins, branch.condition)
    _move_all(run, ins, ins.then_id, "branched", "'then'", holds)
    _move_all(run, ins, ins.else_id, "branched", "'else'")


def _split(run: JourneyRun, ins: Instruction) -> None:
    """Paths take consecutive ranges of a stable 0..99 bucket of (journey.step, user)."""
    salt = f"{run.journey.name}.{ins.id}"
    for number, path in enumerate(ins.split, start=1):
        in_range = All((RandomBucket(path.high, salt), Not(RandomBucket(path.low, salt))))
        _move_all(run, ins, path.target, "split", f"'path {number}'", _in(run, ins, in_range))
    _move_all(run, ins, ins.next_id, "split", "'no path'")


def _update_attribute(run: JourneyRun, ins: Instruction) -> None:
    """Write an identify setting the trait; the warehouse sees it from the next run's dbt build."""
    update = ins.step.action
    assert isinstance(update, UpdateAttribute)
    digest = sql_digest("'update_attribute'", "e.entry_id", sql_string(ins.id))
    message_id = f"'journey-' || {digest}"
    run.execute(
        f"""insert into raw.events (message_id, type, user_id, traits, timestamp, received_at,
                                    landing_file, loaded_at)
            select {message_id}, 'identify', e.user_id, json(?), ?, ?, ?, ?
            from nudge.journey_entries e
            where {run.active_at(ins.id)}
              and not exists (select 1 from raw.events r where r.message_id = {message_id})""",
        [
            json.dumps({update.name: update.value}),
            run.as_of,
            run.as_of,
            f"journey:{run.journey.name}",
            # loaded_at is wall-clock like the loader's: incremental staging reads rows loaded
            # since the latest one staged, and as_of may lie in the past (replays, scenarios).
            datetime.now(UTC).replace(tzinfo=None),
        ],
    )
    _move_all(run, ins, ins.next_id, "updated", sql_string(update.name))


def _exit(run: JourneyRun, ins: Instruction) -> None:
    _move_all(run, ins, None, "exited", "'exit step'", exit_reason="exit_step")


def _set_wake(run: JourneyRun, ins: Instruction, wake_sql: str) -> None:
    """Set ``next_wake_at`` of the entries waiting at ``ins`` (rows already right are left)."""
    run.execute(
        f"""update nudge.journey_entries e set next_wake_at = {wake_sql}
            where {run.active_at(ins.id)} and e.next_wake_at is distinct from {wake_sql}"""
    )


def _interval(duration: timedelta) -> str:
    return f"to_seconds({duration / timedelta(seconds=1)})"


HANDLERS: dict[str, Callable[[JourneyRun, Instruction], None]] = {
    "send": _send,
    "wait": _wait,
    "wait_until": _wait_until,
    "window": _window,
    "branch": _branch,
    "split": _split,
    "update_attribute": _update_attribute,
    "exit": _exit,
}
