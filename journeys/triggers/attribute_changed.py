"""``attribute_changed``: users whose trait differs from the last value this journey saw."""

from __future__ import annotations

import json

from journeys.context import JourneyRun
from journeys.sqltext import json_path, sql_string
from journeys.triggers.kind import TriggerEngine
from nudge.core.dsl.spec import AttributeChanged


def fill(run: JourneyRun, trigger: AttributeChanged) -> None:
    """A first value counts as a change."""
    current = f"json(u.traits -> {sql_string(json_path(trigger.name))})"
    run.execute(
        f"""create or replace temp table _nj_changed as
            select u.user_id, {current} as value
            from marts.dim_users u
            left join nudge.journey_attribute_state s
              on s.journey = ? and s.user_id = u.user_id
            where (s.user_id is null and {current} is not null)
               or (s.user_id is not null and {current} is distinct from s.value)""",
        [run.journey.name],
    )
    key = f"attribute_changed:{trigger.name}:{run.as_of.isoformat()}"
    if not trigger.has_to:
        wanted, params = "true", []
    elif trigger.to is None:
        wanted, params = "value is null", []
    else:
        wanted, params = "value = json(?)", [json.dumps(trigger.to)]
    run.execute(
        f"insert into _nj_candidates select user_id, ?, ? from _nj_changed where {wanted}",
        [key, run.as_of, *params],
    )
    run.execute(
        """insert or replace into nudge.journey_attribute_state
           select ?, user_id, value, ? from _nj_changed""",
        [run.journey.name, run.as_of],
    )
    run.execute("drop table _nj_changed")


ENGINE = TriggerEngine(AttributeChanged, fill)
