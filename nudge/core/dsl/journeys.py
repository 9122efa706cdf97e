"""Parsing journeys (trigger, settings and steps) from raw YAML."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from nudge.core.dsl.conditions import parse_condition, parse_where
from nudge.core.dsl.problems import one_of
from nudge.core.dsl.reader import Reader, describe, sub
from nudge.core.dsl.spec import (
    CHANNELS,
    AttributeChanged,
    Branch,
    Broadcast,
    DateTrigger,
    EventTrigger,
    Exit,
    Goal,
    Journey,
    Origin,
    Reentry,
    SegmentEntered,
    SegmentExited,
    Send,
    Split,
    SplitPath,
    Step,
    StepAction,
    Trigger,
    UpdateAttribute,
    Wait,
    WaitUntil,
    Window,
)

JOURNEY_KEYS = (
    "name", "description", "trigger", "entry_filter", "reentry", "exit_when",
    "exit_on_trigger_lost", "goal", "holdout", "max_event_age", "steps",
)  # fmt: skip
TRIGGER_KEYS = (
    "segment_entered",
    "segment_exited",
    "event",
    "attribute_changed",
    "date",
    "broadcast",
)
STEP_KINDS = ("send", "wait", "wait_until", "window", "branch", "split", "update_attribute", "exit")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
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


# --- triggers --------------------------------------------------------------------------------------


def _trigger(r: Reader, value: Any, path: str) -> Trigger | None:
    kind = r.single_key(value, path, TRIGGER_KEYS, "trigger")
    if kind is None:
        return None
    key, inner = kind
    at = sub(path, key)
    start = r.problem_count
    match key:
        case "segment_entered" | "segment_exited":
            segment = r.string(inner, at)
            if segment is None:
                return None
            return SegmentEntered(segment) if key == "segment_entered" else SegmentExited(segment)
        case "event":
            if isinstance(inner, str):  # shorthand: `event: order_completed`
                return EventTrigger(inner)
            data = r.mapping(inner, at, required=("name",), optional=("where",))
            if data is None:
                return None
            name = r.string(data["name"], sub(at, "name"))
            where = parse_where(r, data["where"], sub(at, "where")) if "where" in data else ()
            return None if name is None or where is None else EventTrigger(name, where)
        case "attribute_changed":
            data = r.mapping(inner, at, required=("name",), optional=("to",))
            if data is None:
                return None
            name = r.string(data["name"], sub(at, "name"))
            return None if name is None else AttributeChanged(name, data.get("to"), "to" in data)
        case "date":
            data = r.mapping(
                inner, at, required=("attribute",), optional=("offset", "at", "timezone_attribute")
            )
            if data is None:
                return None
            attribute = r.string(data["attribute"], sub(at, "attribute"))
            offset = r.signed_duration(data.get("offset", "0s"), sub(at, "offset"))
            local = r.time_of_day(data["at"], sub(at, "at")) if "at" in data else None
            tz_attr = data.get("timezone_attribute")
            if tz_attr is not None:
                tz_attr = r.string(tz_attr, sub(at, "timezone_attribute"))
            if r.problem_count > start or attribute is None or offset is None:
                return None
            return DateTrigger(attribute, offset, local, tz_attr)
        case _:
            data = r.mapping(inner, at, required=("segment",), optional=("at",))
            if data is None:
                return None
            segment = r.string(data["segment"], sub(at, "segment"))
            moment = r.instant(data["at"], sub(at, "at")) if "at" in data else None
            if r.problem_count > start or segment is None:
                return None
            return Broadcast(segment, moment)


# --- steps -----------------------------------------------------------------------------------------


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
    action = _action(r, kind[0], kind[1], sub(path, kind[0])) if kind else None
    return Step(step_id, action, condition)  # type: ignore[arg-type]  # see parse_steps


def _action(r: Reader, kind: str, value: Any, path: str) -> StepAction | None:
    start = r.problem_count
    match kind:
        case "send":
            data = r.mapping(
                value, path, required=("channel", "template"), optional=("topic", "transactional")
            )
            if data is None:
                return None
            channel = r.choice(data["channel"], sub(path, "channel"), CHANNELS, "channel")
            template = r.string(data["template"], sub(path, "template"))
            topic = r.string(data["topic"], sub(path, "topic")) if "topic" in data else None
            transactional = r.boolean(data.get("transactional", False), sub(path, "transactional"))
            if r.problem_count > start or channel is None or template is None:
                return None
            return Send(channel, template, topic, bool(transactional))
        case "wait":
            duration = r.duration(value, path)
            return None if duration is None else Wait(duration)
        case "wait_until":
            data = r.mapping(
                value, path, required=("condition", "timeout"), optional=("on_timeout",)
            )
            if data is None:
                return None
            condition = parse_condition(r, data["condition"], sub(path, "condition"))
            timeout = r.duration(data["timeout"], sub(path, "timeout"))
            on_timeout = data.get("on_timeout", "exit")
            on_timeout = r.choice(
                on_timeout, sub(path, "on_timeout"), ("exit", "continue"), "on_timeout"
            )
            if condition is None or timeout is None or on_timeout is None:
                return None
            return WaitUntil(condition, timeout, on_timeout)  # type: ignore[arg-type]
        case "window":
            return _window(r, value, path)
        case "branch":
            data = r.mapping(value, path, required=("if",), optional=("then", "else"))
            if data is None:
                return None
            condition = parse_condition(r, data["if"], sub(path, "if"))
            then = parse_steps(r, data.get("then", []), sub(path, "then"))
            otherwise = parse_steps(r, data.get("else", []), sub(path, "else"))
            if then is None or otherwise is None:
                return None
            return Branch(condition, then, otherwise)  # type: ignore[arg-type]  # see parse_journey
        case "split":
            return _split(r, value, path)
        case "update_attribute":
            data = r.mapping(value, path, required=("name", "value"))
            if data is None:
                return None
            name = r.string(data["name"], sub(path, "name"))
            return None if name is None else UpdateAttribute(name, data["value"])
        case _:
            return None if r.true(value, path) is None else Exit()


def _window(r: Reader, value: Any, path: str) -> Window | None:
    start = r.problem_count
    data = r.mapping(
        value, path, required=("from", "to"),
        optional=("days", "timezone_attribute", "default_timezone"),
    )  # fmt: skip
    if data is None:
        return None
    days = data.get("days", list(WEEKDAYS))
    if r.list_of(days, sub(path, "days"), "days (mon..sun)") is not None:
        if not days:
            r.problem(sub(path, "days"), "expected at least one day (mon..sun); got an empty list")
        for i, day in enumerate(days):
            r.choice(day, sub(sub(path, "days"), i), WEEKDAYS, "day")
    begin = r.time_of_day(data["from"], sub(path, "from"))
    end = r.time_of_day(data["to"], sub(path, "to"))
    tz_attr = data.get("timezone_attribute")
    if tz_attr is not None:
        tz_attr = r.string(tz_attr, sub(path, "timezone_attribute"))
    default_tz = r.timezone(data.get("default_timezone", "UTC"), sub(path, "default_timezone"))
    if r.problem_count > start or begin is None or end is None or default_tz is None:
        return None
    return Window(tuple(days), begin, end, tz_attr, default_tz)


def _split(r: Reader, value: Any, path: str) -> Split | None:
    items = r.list_of(value, path, "paths {percent, steps}")
    if items is None:
        return None
    if not items:
        r.problem(path, "expected at least one path {percent, steps}; got an empty list")
        return None
    paths: list[SplitPath | None] = []
    for i, item in enumerate(items):
        at = sub(path, i)
        data = r.mapping(item, at, required=("percent", "steps"))
        if data is None:
            paths.append(None)
            continue
        percent = r.number(data["percent"], sub(at, "percent"), low=0, high=100)
        steps = parse_steps(r, data["steps"], sub(at, "steps"))
        paths.append(None if percent is None or steps is None else SplitPath(percent, steps))
    if any(p is None for p in paths):
        return None
    return Split(tuple(p for p in paths if p is not None))
