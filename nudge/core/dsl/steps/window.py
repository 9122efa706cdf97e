"""``window``: stay at the step until the user's local clock is inside given days and hours."""

from __future__ import annotations

from typing import Any

from nudge.core.dsl.reader import Reader, sub
from nudge.core.dsl.spec import Window
from nudge.core.dsl.steps.kind import ParseSteps, StepKind

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse(r: Reader, value: Any, path: str, _: ParseSteps) -> Window | None:
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
    begin, end, tz_attr, default_tz = r.clock_window(data, path)
    if r.problem_count > start or begin is None or end is None or default_tz is None:
        return None
    return Window(tuple(days), begin, end, tz_attr, default_tz)


def words(window: Window) -> str:
    days = "every day" if set(window.days) == set(WEEKDAYS) else ", ".join(window.days)
    zone = (
        f"the user's {window.timezone_attribute} (else {window.default_timezone})"
        if window.timezone_attribute
        else window.default_timezone
    )
    return f"waits for {days}, {window.start} to {window.end} in {zone}"


KIND = StepKind("window", Window, parse, words)
