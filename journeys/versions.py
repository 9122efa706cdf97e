"""Journey versions: which definition ran, and where people go when an edit removes their step.

Each run records the version it ran (a hash of the definition) with its steps in program order,
as ``(step, next step)`` pairs, in ``nudge.journey_versions``. A person waiting at a step that the
current definition no longer has moves to the next step that survives: the step that followed it
in the latest version that had it, or the one after that, and so on. When none survives they
leave with reason ``step_removed``.
"""

from __future__ import annotations

import json

from journeys.context import JourneyRun


def record_version(run: JourneyRun) -> None:
    """Remember this run's version of the journey and its steps."""
    steps = [[ins.id, ins.next_id] for ins in run.program.instructions]
    run.execute(
        """insert into nudge.journey_versions values (?, ?, ?, ?, ?)
           on conflict (journey, version) do update set
               last_run_as_of = greatest(last_run_as_of, excluded.last_run_as_of)""",
        [run.journey.name, run.version, json.dumps(steps), run.as_of, run.as_of],
    )


def removed_step_targets(run: JourneyRun) -> dict[str, str | None]:
    """For each step active entries wait at that the program lacks: where they go (None: exit)."""
    current = set(run.program.step_ids)
    stranded = [
        step
        for (step,) in run.execute(
            """select distinct current_step from nudge.journey_entries
               where journey = ? and status = 'active' and current_step is not null
               order by 1""",
            [run.journey.name],
        ).fetchall()
        if step not in current
    ]
    if not stranded:
        return {}
    versions = [
        dict(json.loads(steps))
        for (steps,) in run.execute(
            """select steps from nudge.journey_versions where journey = ? and version <> ?
               order by last_run_as_of desc, version""",
            [run.journey.name, run.version],
        ).fetchall()
    ]
    return {step: _next_surviving(step, versions, current) for step in stranded}


def _next_surviving(
    step: str, versions: list[dict[str, str | None]], current: set[str]
) -> str | None:
    followers = next((v for v in versions if step in v), {})
    seen = {step}
    target = followers.get(step)
    while target is not None and target not in current and target not in seen:
        seen.add(target)
        target = followers.get(target)
    return target if target in current else None
