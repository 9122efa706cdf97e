"""``update_attribute``: write an identify call setting the trait, then move on."""

from __future__ import annotations

import json

from journeys.context import JourneyRun
from journeys.ids import sql_digest
from journeys.program import Instruction
from journeys.sqltext import sql_string
from journeys.steps.at_step import move_all
from journeys.steps.kind import StepEngine
from nudge.core.clock import utc_now
from nudge.core.dsl.spec import UpdateAttribute


def advance(run: JourneyRun, ins: Instruction) -> None:
    """The warehouse sees the trait from the next run's dbt build."""
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
            utc_now(),
        ],
    )
    move_all(run, ins, ins.next_id, "updated", sql_string(update.name))


ENGINE = StepEngine(UpdateAttribute, advance)
