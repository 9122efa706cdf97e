"""``nudge explain --user U --journey J``: where a person is in a journey and why.

Read-only queries over the journey state (``nudge.journey_entries``, ``journey_transitions``,
``outbox``, ``delivery_ledger``) and the marts, at the as_of of the latest run: the current entry,
every transition with its run, every message with its ledger status, the conditions scoped to
the entry with the trigger's values and the events they counted (``explain_scoped``), and what
happens next and when. For someone not in the journey, the reason: never triggered, filtered out by the
``entry_filter``, finished (and whether ``reentry`` lets them start again), or not a known user.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb

from journeys.condition_cache import entry_scoped
from journeys.explain_scoped import scoped_condition_lines
from journeys.program import Instruction, compile_program
from nudge.core.dsl import spec as m
from nudge.core.dsl.durations import format_duration
from nudge.core.dsl.problems import did_you_mean
from nudge.core.segments.compiler import compile_condition, warehouse_relations
from nudge.core.segments.explain import ExplainError
from nudge.core.warehouse.connection import connect
from nudge.core.workspace import Workspace


def explain_journey(
    workspace: Workspace,
    content: m.Content,
    *,
    user_id: str,
    journey: str,
    as_of: datetime | None = None,
) -> str:
    """The explanation as text; raises ``ExplainError`` for an unknown journey or no warehouse.
    ``as_of`` (naive UTC) defaults to the latest run's."""
    journeys = {j.name: j for j in content.journeys}
    if journey not in journeys:
        raise ExplainError(
            f"unknown journey {journey!r}{did_you_mean(journey, sorted(journeys))}; "
            f"known: {', '.join(sorted(journeys)) or 'none'}"
        )
    if not workspace.warehouse_path.is_file():
        raise ExplainError(f"no warehouse at {workspace.warehouse_path}: run the pipeline first")
    with connect(workspace.warehouse_path, read_only=True) as con:
        return _Explainer(con, content, journeys[journey], user_id, as_of).explain()


def _when(moment: datetime | None, as_of: datetime) -> str:
    if moment is None:
        return "never"
    delta = moment - as_of
    if delta <= timedelta(0):
        return f"{moment.isoformat()} (due now: at the next run)"
    return f"{moment.isoformat()} (in {format_duration(delta)})"


def _zone(name: object, default: str) -> ZoneInfo:
    try:
        return ZoneInfo(str(name)) if name else ZoneInfo(default)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(default)


class _Explainer:
    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        content: m.Content,
        journey: m.Journey,
        user_id: str,
        as_of: datetime | None,
    ) -> None:
        self.con = con
        self.content = content
        self.journey = journey
        self.user_id = user_id
        (latest,) = con.execute("select max(as_of) from nudge.runs").fetchone()
        if as_of is None and latest is None:
            raise ExplainError("the warehouse has no run yet: run the pipeline first")
        self.as_of = as_of or latest
        self.program = {i.id: i for i in compile_program(journey).instructions}
        row = self._one("select traits from marts.dim_users where user_id = ?", [user_id])
        self.known = row is not None
        self.traits: dict[str, object] = json.loads(row[0]) if row and row[0] else {}

    def _one(self, sql: str, params: list[object]) -> tuple | None:
        try:
            return self.con.execute(sql, params).fetchone()
        except duckdb.CatalogException:  # marts not built yet
            return None

    def explain(self) -> str:
        entries = self.con.execute(
            """select entry_id, status, current_step, started_at, step_reached_at, next_wake_at,
                      exit_reason, converted_at, ended_at, trigger_key, holdout
               from nudge.journey_entries where journey = ? and user_id = ?
               order by started_at, entry_id""",
            [self.journey.name, self.user_id],
        ).fetchall()
        lines = [f"journey {self.journey.name} for user {self.user_id} at as_of {self.as_of}"]
        active = [e for e in entries if e[1] == "active"]
        if active:
            lines += self._entry(active[-1])
        else:
            lines += self._why_not_in(entries)
        if entries:  # the current entry, else the last one (why it left)
            latest = active[-1] if active else entries[-1]
            lines += scoped_condition_lines(
                self.con, self.content, self.journey, latest[0], latest[2], self.as_of
            )
        lines += self._history()
        lines += self._messages()
        if active:
            lines += self._next(active[-1])
        return "\n".join(lines)

    # --- the current entry --------------------------------------------------------------------

    def _entry(self, entry: tuple) -> list[str]:
        entry_id, _, step, started, reached, wake, _, converted, _, trigger, holdout = entry
        ins = self.program.get(step)
        kind = ins.kind if ins else "no longer in the definition"
        lines = [
            f"in the journey: entry {entry_id[:12]}, started {started} (trigger {trigger})",
            f"  at step {step} ({kind}) since {reached}; next wake-up {_when(wake, self.as_of)}",
        ]
        if holdout:
            lines.append("  in the holdout (control) group: messages are recorded, not sent")
        if converted:
            lines.append(f"  converted at {converted} (goal met)")
        return lines

    def _next(self, entry: tuple) -> list[str]:
        step, wake = entry[2], entry[5]
        ins = self.program.get(step)
        if ins is None:
            return [f"next: step {step} was removed; the entry exits at the next run"]
        return [f"next: {self._step_outlook(ins, wake)}", f"  then: {self._after(ins)}"]

    def _step_outlook(self, ins: Instruction, wake: datetime | None) -> str:
        action = ins.step.action
        match action:
            case m.Send(channel=channel, template=template):
                return f"step {ins.id} sends {channel} {template!r} at the next run"
            case m.Wait(duration=duration):
                return f"step {ins.id} waits {format_duration(duration)}: moves on at {_when(wake, self.as_of)}"
            case m.WaitUntil(condition=condition, timeout=timeout, on_timeout=on_timeout):
                if entry_scoped(condition):
                    holds = "judged for this entry above"
                else:
                    holds = "holds" if self._holds(condition) else "does not hold"
                return (
                    f"step {ins.id} waits until {condition} (now it {holds}); "
                    f"timeout {format_duration(timeout)} at {_when(wake, self.as_of)}, then {on_timeout}"
                )
            case m.Window():
                return f"step {ins.id} waits for its window: {self._window(action, wake)}"
            case _:
                return f"step {ins.id} ({ins.kind}) runs at the next run"

    def _window(self, window: m.Window, wake: datetime | None) -> str:
        name = self.traits.get(window.timezone_attribute) if window.timezone_attribute else None
        zone = _zone(name, window.default_timezone)
        days = ",".join(window.days) if window.days else "every day"
        spec = f"{days} {window.start}-{window.end} {zone.key}"
        if wake is None:
            return f"{spec}; open now, moves on at the next run"
        local = wake.replace(tzinfo=UTC).astimezone(zone)
        return f"{spec}; next opening {_when(wake, self.as_of)} = {local:%Y-%m-%d %H:%M} {zone.key}"

    def _after(self, ins: Instruction) -> str:
        if ins.kind == "branch":
            return f"branch: then -> {ins.then_id or 'end'}, else -> {ins.else_id or 'end'}"
        if ins.kind == "split":
            paths = ", ".join(f"{t.low:g}-{t.high:g}% -> {t.target or 'end'}" for t in ins.split)
            return f"split: {paths}"
        if ins.next_id is None:
            return "the journey completes"
        return f"step {ins.next_id} ({self.program[ins.next_id].kind})"

    # --- not in the journey -------------------------------------------------------------------

    def _why_not_in(self, entries: list[tuple]) -> list[str]:
        if entries:
            last = entries[-1]
            status, step, reason, ended = last[1], last[2], last[6], last[8]
            if status == "exited":
                left = f"exited at step {step} on {ended} (reason: {reason})"
            else:
                left = f"completed on {ended}"
            return [f"not in the journey: {left}", f"  {self._reentry(ended)}"]
        if not self.known:
            return ["not in the journey: not a known user at this as_of (no calls, or deleted)"]
        lines = [f"not in the journey: never entered; trigger {self._trigger()}"]
        if self.journey.entry_filter is not None and entry_scoped(self.journey.entry_filter):
            lines.append(
                f"  entry_filter {self.journey.entry_filter} is judged for each firing of the "
                "trigger when it fires"
            )
        elif self.journey.entry_filter is not None:
            holds = self._holds(self.journey.entry_filter)
            verdict = "holds" if holds else "does not hold: filtered out when the trigger fires"
            lines.append(f"  entry_filter {self.journey.entry_filter} {verdict}")
        return lines

    def _reentry(self, ended: datetime | None) -> str:
        reentry = self.journey.reentry
        if reentry.mode == "never":
            return "reentry: never, so the user will not start this journey again"
        if reentry.mode == "always":
            return "reentry: always, so the next firing of the trigger starts a new entry"
        if ended is None or reentry.after is None:
            return "reentry: after a delay"
        return (
            f"reentry: after {format_duration(reentry.after)}, so from {ended + reentry.after} on"
        )

    def _trigger(self) -> str:
        match self.journey.trigger:
            case m.SegmentEntered(segment=s) | m.Broadcast(segment=s):
                member = self._holds(m.InSegment(s))
                return f"{self._trigger_name()}: the user is {'' if member else 'not '}in {s}"
            case m.SegmentExited(segment=s):
                member = self._holds(m.InSegment(s))
                return f"segment_exited {s}: the user is {'still ' if member else 'not '}in it"
            case m.EventTrigger(name=name):
                row = self._one(
                    "select count(*), max(timestamp) from marts.fct_events "
                    "where user_id = ? and event = ?",
                    [self.user_id, name],
                )
                count, last = row or (0, None)
                if not count:
                    return f"event {name!r}: never performed, so never triggered"
                return (
                    f"event {name!r}: performed {count} times (last {last}); none started an "
                    f"entry (where filters, max_event_age {format_duration(self.journey.max_event_age)})"
                )
            case trigger:
                return f"{self._trigger_name()} ({trigger}) has not started an entry"

    def _trigger_name(self) -> str:
        return type(self.journey.trigger).__name__

    def _holds(self, condition: m.Condition) -> bool:
        sql = compile_condition(
            condition, warehouse_relations(self.as_of), topics=self.content.topics
        )
        try:
            rows = self.con.execute(
                f"select 1 from ({sql}) c where c.user_id = ? limit 1", [self.user_id]
            ).fetchall()
        except duckdb.CatalogException:
            return False
        return bool(rows)

    # --- history and messages -----------------------------------------------------------------

    def _history(self) -> list[str]:
        rows = self.con.execute(
            """select as_of, run_id, from_step, to_step, action, detail
               from nudge.journey_transitions where journey = ? and user_id = ?
               order by as_of, rowid""",
            [self.journey.name, self.user_id],
        ).fetchall()
        lines = ["history:" if rows else "history: none"]
        for as_of, run_id, from_step, to_step, action, detail in rows:
            move = f"{from_step or '-'} -> {to_step or '-'}"
            extra = f" ({detail})" if detail else ""
            lines.append(f"  {as_of} run {run_id}: {action} {move}{extra}")
        return lines

    def _messages(self) -> list[str]:
        rows = self.con.execute(
            """select o.as_of, o.step, o.channel, o.template,
                      coalesce(l.status, 'pending'), l.reason, l.as_of, l.attempts,
                      l.next_attempt_at
               from nudge.outbox o left join nudge.delivery_ledger l using (idempotency_key)
               where o.journey = ? and o.user_id = ?
               order by o.as_of, o.step""",
            [self.journey.name, self.user_id],
        ).fetchall()
        lines = ["messages:" if rows else "messages: none"]
        for queued, step, channel, template, status, reason, decided, attempts, retry in rows:
            text = f"  {step}: {channel} {template!r} queued {queued}: {status}"
            if decided is not None:
                text += f" at {decided}"
            if reason:
                text += f" ({reason})"
            if retry is not None and status == "failed":
                text += f"; attempt {attempts}, retried at {_when(retry, self.as_of)}"
            lines.append(text)
        return lines
