"""Parsing journeys (trigger, settings and steps) from raw YAML."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from nudge.core.dsl.conditions import parse_condition
from nudge.core.dsl.problems import one_of
from nudge.core.dsl.reader import Reader, describe, sub
from nudge.core.dsl.spec import Goal, Journey, Origin, Reentry, Step, StepAction, Trigger
from nudge.core.dsl.steps.registry import STEP_KINDS as STEP_REGISTRY
from nudge.core.dsl.triggers.registry import TRIGGER_KINDS

JOURNEY_KEYS = (
    "name", "description", "trigger", "entry_filter", "reentry", "exit_when",
    "exit_on_trigger_lost", "goal", "holdout", "max_event_age", "steps",
)  # fmt: skip
TRIGGER_KEYS = tuple(TRIGGER_KINDS)
STEP_KINDS = tuple(STEP_REGISTRY)
DEFAULT_MAX_EVENT_AGE = timedelta(hours=72)


def parse_journey(r: Reader, data: Mapping[str, Any], name: str) -> Journey:
    """A journey from its (already checked to be a mapping) YAML.

    Best effort: when parts are wrong (problems recorded), the journey is still built from the
    parts that parse (``None`` where nothing did, failed steps left out) so that the cross checks
    can still report unknown templates, duplicate step ids and the like in the same pass. The
    caller keeps such a journey only for checking, never as a usable definition.
    """
    # Unknown or missing keys are recorded; the rest is still read so every problem is reported.
    r.mapping(data, "", required=("trigger", "steps"), optional=JOURNEY_KEYS)
    trigger = _trigger(r, data["trigger"], "trigger") if "trigger" in data else None
    steps = parse_steps(r, data["steps"], "steps") if "steps" in data else None
    entry_filter = _optional_condition(r, data, "entry_filter")
    exit_when = _optional_condition(r, data, "exit_when")
    reentry = _reentry(r, data["reentry"], "reentry") if "reentry" in data else Reentry()
    lost = data.get("exit_on_trigger_lost", True)
    lost = r.boolean(lost, "exit_on_trigger_lost")
    goal = _goal(r, data["goal"], "goal") if "goal" in data else None
    holdout = _holdout(r, data["holdout"], "holdout") if "holdout" in data else None
    max_age = data.get("max_event_age")
    max_age = r.duration(max_age, "max_event_age") if max_age is not None else DEFAULT_MAX_EVENT_AGE
    description = data.get("description", "")
    if not isinstance(description, str):
        r.problem("description", f"expected a string; got {describe(description)}")
    return Journey(
        name=name,
        origin=Origin(r.file, r.item),
        trigger=trigger,  # type: ignore[arg-type]  # None only with a problem recorded
        steps=steps or (),
        entry_filter=entry_filter,
        reentry=reentry or Reentry(),
        exit_when=exit_when,
        exit_on_trigger_lost=bool(lost),
        goal=goal,
        holdout_percent=holdout,
        max_event_age=max_age or DEFAULT_MAX_EVENT_AGE,
        description=str(description),
    )


def _optional_condition(r: Reader, data: Mapping[str, Any], key: str) -> Any:
    return parse_condition(r, data[key], key) if key in data else None


def _reentry(r: Reader, value: Any, path: str) -> Reentry | None:
    if value in ("never", "always"):
        return Reentry(value)
    if isinstance(value, Mapping) and set(value) == {"after"}:
        after = r.duration(value["after"], sub(path, "after"))
        return None if after is None else Reentry("after", after)
    r.problem(path, f"expected never, always or {{after: <duration>}}; got {describe(value)}")
    return None


def _goal(r: Reader, value: Any, path: str) -> Goal | None:
    data = r.mapping(value, path, required=("condition",), optional=("within", "exit"))
    if data is None:
        return None
    condition = parse_condition(r, data["condition"], sub(path, "condition"))
    within = r.duration(data["within"], sub(path, "within")) if "within" in data else None
    exit_ = r.boolean(data.get("exit", True), sub(path, "exit"))
    if condition is None or exit_ is None or ("within" in data and within is None):
        return None
    return Goal(condition, within, exit_)


def _holdout(r: Reader, value: Any, path: str) -> float | None:
    data = r.mapping(value, path, required=("percent",))
    return (
        None if data is None else r.number(data["percent"], sub(path, "percent"), low=0, high=100)
    )


# --- triggers and steps: each kind's own module parses it (the registries) -------------------


def _trigger(r: Reader, value: Any, path: str) -> Trigger | None:
    kind = r.single_key(value, path, TRIGGER_KEYS, "trigger")
    if kind is None:
        return None
    key, inner = kind
    return TRIGGER_KINDS[key].parse(r, inner, sub(path, key))


def parse_steps(r: Reader, value: Any, path: str) -> tuple[Step, ...] | None:
    """A list of steps, every one read (best effort, see ``parse_journey``).

    A step that does not parse stays in place with ``action=None`` (and ``id=None`` when its id is
    bad), so the cross checks report the other steps under their real positions.
    """
    items = r.list_of(value, path, "steps")
    if items is None:
        return None
    return tuple(_step(r, item, sub(path, i)) for i, item in enumerate(items))


def _step(r: Reader, value: Any, path: str) -> Step:
    if not isinstance(value, Mapping):
        r.problem(path, f"expected a step {{id, <kind>, if?}}; got {describe(value)}")
        return Step(None, None)  # type: ignore[arg-type]  # placeholder, see parse_steps
    step_id = r.name(value["id"], sub(path, "id"), "step id") if "id" in value else None
    if "id" not in value:
        r.problem(sub(path, "id"), "missing; every step needs an id")
    condition = parse_condition(r, value["if"], sub(path, "if")) if "if" in value else None
    rest = {key: item for key, item in value.items() if key not in ("id", "if")}
    kind = None
    if len(rest) == 1:
        kind = r.single_key(rest, path, STEP_KINDS, "step kind")
    else:
        r.problem(
            path,
            f"expected exactly one step kind besides id and if, {one_of(STEP_KINDS)}; "
            f"got {', '.join(map(str, rest)) or 'none'}",
        )
    action: StepAction | None = None
    if kind is not None:
        key, inner = kind
        action = STEP_REGISTRY[key].parse(r, inner, sub(path, key), parse_steps)
    return Step(step_id, action, condition)  # type: ignore[arg-type]  # see parse_steps
