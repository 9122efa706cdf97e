"""Invariants of one journey's entries, checked after the journey runs (non-blocking checks).

An entry is in one place at a time: at most one active entry per person, an active entry sits on
a step the current definition has, a finished entry says how it finished.
"""

import dagster as dg
import duckdb

from journeys.program import compile_program
from nudge.core.dsl.spec import Journey
from nudge.core.warehouse.connection import connect
from orchestration.location import load_location

SAMPLE = 5


def entry_problems(con: duckdb.DuckDBPyConnection, journey: Journey) -> list[tuple[str, str]]:
    """(user_id or entry_id, what is wrong) for every entry of ``journey`` breaking an invariant."""
    steps = list(compile_program(journey).step_ids)
    return con.execute(
        """
        select user_id, 'active in ' || count(*) || ' entries at once'
        from nudge.journey_entries where journey = $journey and status = 'active'
        group by user_id having count(*) > 1
        union all
        select entry_id, 'active on step ' || coalesce(current_step, 'none')
               || ', which the journey does not have'
        from nudge.journey_entries
        where journey = $journey and status = 'active'
          and (current_step is null or not list_contains($steps, current_step))
        union all
        select entry_id, 'status ' || status || ' is not active, completed or exited'
        from nudge.journey_entries
        where journey = $journey and status not in ('active', 'completed', 'exited')
        union all
        select entry_id, 'exited without an exit reason'
        from nudge.journey_entries
        where journey = $journey and status = 'exited' and exit_reason is null
        order by all
        """,
        {"journey": journey.name, "steps": steps},
    ).fetchall()


def journey_entries_check(journey: Journey, asset: dg.AssetKey) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=asset,
        name="entries_consistent",
        blocking=False,
        # Below every other step ready at the same time, so a run sends before it checks (one
        # step at a time: ten checks ahead of the outbox added a second to a message's latency).
        op_tags={"dagster/priority": -1},
        description="One active entry per person, on a step the journey has; every exited "
        "entry has a reason.",
    )
    def _check() -> dg.AssetCheckResult:
        with connect(load_location().workspace.warehouse_path, read_only=True) as con:
            problems = entry_problems(con, journey)
        return dg.AssetCheckResult(
            passed=not problems,
            description=f"{len(problems)} problems" if problems else "all entries consistent",
            metadata={"count": len(problems), "sample": [list(p) for p in problems[:SAMPLE]]},
        )

    return _check
