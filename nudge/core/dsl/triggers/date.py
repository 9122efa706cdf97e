"""``date``: the time in a user's trait (plus an offset, at a local clock time) arrives."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from nudge.core.dsl.durations import format_duration
from nudge.core.dsl.reader import Reader, sub
from nudge.core.dsl.spec import DateTrigger
from nudge.core.dsl.triggers.kind import TriggerKind


def parse(r: Reader, value: Any, path: str) -> DateTrigger | None:
    start = r.problem_count
    data = r.mapping(
        value, path, required=("attribute",), optional=("offset", "at", "timezone_attribute")
    )
    if data is None:
        return None
    attribute = r.string(data["attribute"], sub(path, "attribute"))
    offset = r.signed_duration(data.get("offset", "0s"), sub(path, "offset"))
    local = r.time_of_day(data["at"], sub(path, "at")) if "at" in data else None
    tz_attr = data.get("timezone_attribute")
    if tz_attr is not None:
        tz_attr = r.string(tz_attr, sub(path, "timezone_attribute"))
    if r.problem_count > start or attribute is None or offset is None:
        return None
    return DateTrigger(attribute, offset, local, tz_attr)


def words(trigger: DateTrigger) -> str:
    text = f"the time in trait {trigger.attribute}"
    if trigger.offset > timedelta(0):
        text = f"{format_duration(trigger.offset)} after {text}"
    elif trigger.offset < timedelta(0):
        text = f"{format_duration(-trigger.offset)} before {text}"
    if trigger.at is not None:
        zone = f"the user's {trigger.timezone_attribute}" if trigger.timezone_attribute else "UTC"
        text += f", at {trigger.at} in {zone}"
    return text


KIND = TriggerKind("date", DateTrigger, parse, words)
