"""``nudge explain --user U --journey J``: where a person is in a journey and why.

Read-only queries over the journey state (``nudge.journey_entries``, ``journey_transitions``,
``outbox``, ``delivery_ledger``) and the marts, at the as_of of the latest run: the current entry,
every transition with its run, every message with its ledger status, the conditions scoped to
the entry with the trigger's values and the events they counted (``explain_scoped``), and what
happens next and when. For someone not in the journey, the reason: never triggered, filtered out by the
``entry_filter``, finished (and whether ``reentry`` lets them start again). An id the warehouse
does not know and no entry has carried is an ``ExplainError``, as for a segment.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import duckdb

from journeys.condition_cache import entry_scoped
from journeys.explain_scoped import scoped_condition_lines
from journeys.history_words import delivery_words, transition_words
from journeys.program import Instruction, compile_program
from journeys.steps.registry import step_engine
from journeys.triggers.registry import trigger_engine
from nudge.core.dsl import spec as m
from nudge.core.dsl.durations import format_duration
from nudge.core.dsl.problems import did_you_mean
from nudge.core.dsl.triggers.registry import trigger_kind
from nudge.core.dsl.words import condition_words
from nudge.core.identity import person_ids
from nudge.core.segments.compiler import compile_condition, warehouse_relations
from nudge.core.segments.explain import ExplainError
from nudge.core.warehouse.connection import connect, warehouse_exists
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
    if not warehouse_exists(workspace.warehouse_path):
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
        # An id merged into another person explains that person, with every id's history.
        self.user_id, self.ids = person_ids(con, user_id)
        (latest,) = con.execute("select max(as_of) from nudge.runs").fetchone()
        if as_of is None and latest is None:
            raise ExplainError("the warehouse has no run yet: run the pipeline first")
        self.as_of = as_of or latest
        self.program = {i.id: i for i in compile_program(journey).instructions}
        row = self._one("select traits from marts.dim_users where user_id = ?", [self.user_id])
        self.known = row is not None
        self.traits: dict[str, object] = json.loads(row[0]) if row and row[0] else {}

    def when(self, moment: datetime | None) -> str:
        return _when(moment, self.as_of)

    def row(self, sql: str, params: list[object]) -> tuple | None:
        return self._one(sql, params)

    def _one(self, sql: str, params: list[object]) -> tuple | None:
        try:
            return self.con.execute(sql, params).fetchone()
        except duckdb.CatalogException:  # marts not built yet
            return None

    def explain(self) -> str:
        entries = self.con.execute(
            """select entry_id, status, current_step, started_at, step_reached_at, next_wake_at,
                      exit_reason, converted_at, ended_at, trigger_key, holdout
               from nudge.journey_entries where journey = ? and list_contains(cast(? as varchar[]), user_id)
               order by started_at, entry_id""",
            [self.journey.name, self.ids],
        ).fetchall()
        if not entries and not self.known:  # a mistyped id, as `explain --segment` says too
            raise ExplainError(
                f"user {self.user_id!r} is not a known user at as_of {self.as_of} (no call "
                "carries that id, or the user was deleted): check the id with `nudge profile`"
            )
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
        words = trigger_kind(self.journey.trigger).words(self.journey.trigger)
        lines = [
            f"in the journey: entry {entry_id[:12]}, started {started} by {words} "
            f"(trigger key {trigger})",
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
        engine = step_engine(ins.step.action)
        return [f"next: {engine.outlook(self, ins, wake)}", f"  then: {self._onward(ins)}"]

    def _onward(self, ins: Instruction) -> str:
        ways = step_engine(ins.step.action).onward(ins)
        if not ways:
            return "the user leaves the journey"

        def target(step_id: str | None) -> str:
            if step_id is None:
                return "the journey completes"
            return f"step {step_id} ({self.program[step_id].kind})"

        if len(ways) == 1 and not ways[0][0]:
            return target(ways[0][1])
        return ", ".join(f"{label} -> {target(step_id)}" for label, step_id in ways)

    # --- not in the journey -------------------------------------------------------------------

    def _why_not_in(self, entries: list[tuple]) -> list[str]:
        if entries:
            last = entries[-1]
            status, step, reason, ended = last[1], last[2], last[6], last[8]
            if status == "exited":
                left = f"exited at step {step} on {ended} (reason: {self._exit_reason(reason)})"
            else:
                left = f"completed on {ended}"
            return [f"not in the journey: {left}", f"  {self._reentry(ended)}"]
        trigger = self.journey.trigger
        words = trigger_kind(trigger).words(trigger)
        why_not = trigger_engine(trigger).why_not(self, trigger, f"triggered by {words}")
        lines = [f"not in the journey: never entered; {why_not}"]
        entry_filter = self.journey.entry_filter
        if entry_filter is not None and entry_scoped(entry_filter):
            lines.append(
                f"  entry_filter ({condition_words(entry_filter)}) is judged for each firing of "
                "the trigger when it fires"
            )
        elif entry_filter is not None:
            holds = self.holds(entry_filter)
            verdict = "holds" if holds else "does not hold: filtered out when the trigger fires"
            lines.append(f"  entry_filter ({condition_words(entry_filter)}) {verdict}")
        return lines

    def _exit_reason(self, reason: str | None) -> str:
        """The exit reason, with the condition in words when a condition made the user leave."""
        journey = self.journey
        if reason == "exit_when" and journey.exit_when is not None:
            return f"exit_when, {condition_words(journey.exit_when)}, held"
        if reason == "converted" and journey.goal is not None:
            return f"converted, the goal {condition_words(journey.goal.condition)} was met"
        if reason == "trigger_lost":
            words = trigger_kind(journey.trigger).words(journey.trigger)
            return f"trigger_lost, what fired ({words}) no longer holds"
        return str(reason)

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

    def holds(self, condition: m.Condition) -> bool:
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
        """Every move, in words; a send with the delivery ledger's outcome of its message."""
        rows = self.con.execute(
            """select t.as_of, t.run_id, t.from_step, t.to_step, t.action, t.detail,
                      o.channel, o.template, l.status, l.reason
               from nudge.journey_transitions t
               left join nudge.outbox o on t.action = 'sent' and o.idempotency_key = t.detail
               left join nudge.delivery_ledger l on l.idempotency_key = o.idempotency_key
               where t.journey = ? and list_contains(cast(? as varchar[]), t.user_id)
               order by t.as_of, t.seq""",
            [self.journey.name, self.ids],
        ).fetchall()
        lines = ["history:" if rows else "history: none"]
        for as_of, run_id, *move in rows:
            lines.append(f"  {as_of} run {run_id}: {transition_words(*move)}")
        return lines

    def _messages(self) -> list[str]:
        rows = self.con.execute(
            """select o.as_of, o.step, o.channel, o.template, l.status, l.reason, l.as_of,
                      l.attempts, l.next_attempt_at
               from nudge.outbox o left join nudge.delivery_ledger l using (idempotency_key)
               where o.journey = ? and list_contains(cast(? as varchar[]), o.user_id)
               order by o.as_of, o.step""",
            [self.journey.name, self.ids],
        ).fetchall()
        lines = ["messages:" if rows else "messages: none"]
        for queued, step, channel, template, status, reason, decided, attempts, retry in rows:
            text = f"  step {step}: {channel} template {template} queued {queued}: "
            text += delivery_words(status, reason)
            if decided is not None:
                text += f" (decided at {decided})"
            if retry is not None and status == "failed":
                text += f"; attempt {attempts}, tried again at {_when(retry, self.as_of)}"
            lines.append(text)
        return lines
