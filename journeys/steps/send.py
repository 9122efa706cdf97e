"""``send``: write one outbox row per person at the step, then move them on."""

from __future__ import annotations

from datetime import datetime

from journeys.context import JourneyRun
from journeys.ids import sql_digest
from journeys.program import Instruction
from journeys.sqltext import sql_string
from journeys.steps.at_step import move_all
from journeys.steps.kind import StepEngine, StepView
from nudge.core.dsl.spec import Send
from nudge.core.dsl.steps import send as syntax
from nudge.core.dsl.triggers.registry import trigger_kind

OUTBOX_COLUMNS = """idempotency_key, delivery_id, run_id, as_of, entry_id, journey, step, user_id,
    channel, template, topic, transactional, holdout, event_properties, created_at, journey_version"""


def advance(run: JourneyRun, ins: Instruction) -> None:
    send = ins.step.action
    assert isinstance(send, Send)
    journey = sql_string(run.journey.name)
    step = sql_string(ins.id)
    props = "null"
    if trigger_kind(run.journey.trigger).carries_event:
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
    move_all(run, ins, ins.next_id, "sent", detail=key)


def outlook(view: StepView, ins: Instruction, wake: datetime | None) -> str:
    return f"step {ins.id} {syntax.words(ins.step.action)} at the next run"


ENGINE = StepEngine(Send, advance, outlook)
