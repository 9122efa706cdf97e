"""Parsing one file's definitions: segments, journeys, templates, layouts, topics and policies."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nudge.core.dsl.conditions import parse_condition
from nudge.core.dsl.journeys import parse_journey
from nudge.core.dsl.problems import DefinitionProblem, did_you_mean, one_of
from nudge.core.dsl.reader import Reader, describe, sub
from nudge.core.dsl.spec import (
    CHANNELS,
    Content,
    FrequencyCap,
    Journey,
    Layout,
    Origin,
    Policies,
    QuietHours,
    Segment,
    Template,
    Topic,
)

TOP_LEVEL_KEYS = ("segments", "journeys", "templates", "layouts", "topics", "policies")
KINDS = {
    "segments": "segment",
    "journeys": "journey",
    "templates": "template",
    "layouts": "layout",
    "topics": "topic",
}


@dataclass
class Parsed:
    """What one mapping of definitions gave.

    ``names`` maps (kind, name) to the file of every named item, including items that failed to
    parse, so duplicates are found across files and references to a broken item are not reported
    again as unknown.
    """

    content: Content
    problems: list[DefinitionProblem]
    # ``content`` plus the definitions that have problems, as far as they could be read: for the
    # cross checks only, so that one pass reports every problem (see ``parse_journey``).
    checkable: Content = field(default_factory=Content)
    names: dict[tuple[str, str], str] = field(default_factory=dict)
    has_policies: bool = False


def parse_mapping(
    data: Any,
    file: str,
    *,
    ignore_keys: Collection[str] = (),
    relative_to: datetime | None = None,
) -> Parsed:
    problems: list[DefinitionProblem] = []
    parsed = Parsed(Content(), problems)
    if data is None:
        return parsed
    if not isinstance(data, Mapping):
        problems.append(
            DefinitionProblem(
                file,
                "",
                "",
                f"expected a mapping with keys {', '.join(TOP_LEVEL_KEYS)}; got {describe(data)}",
            )
        )
        return parsed
    for key in data:
        if key not in TOP_LEVEL_KEYS and key not in ignore_keys:
            options = [*TOP_LEVEL_KEYS, *ignore_keys]
            problems.append(
                DefinitionProblem(
                    file,
                    "",
                    str(key),
                    f"unknown top-level key; {one_of(options)}{did_you_mean(key, options)}",
                )
            )
    found: dict[str, list[Any]] = {}
    best_effort: dict[str, list[Any]] = {}
    for key, kind in KINDS.items():
        found[key], best_effort[key] = [], []
        items = data.get(key)
        if items is None:
            continue
        if not isinstance(items, list):
            problems.append(
                DefinitionProblem(
                    file, "", key, f"expected a list of {kind}s; got {describe(items)}"
                )
            )
            continue
        for i, raw in enumerate(items):
            start = len(problems)
            item = _parse_item(kind, raw, f"{key}[{i}]", file, problems, parsed.names, relative_to)
            if item is not None:
                best_effort[key].append(item)
                if len(problems) == start:
                    found[key].append(item)
    policies = Policies()
    if "policies" in data:
        parsed.has_policies = True
        policies = _policies(Reader(file, "policies", problems), data["policies"]) or Policies()
    parsed.content, parsed.checkable = (
        Content(
            segments=tuple(items["segments"]),
            journeys=tuple(items["journeys"]),
            templates=tuple(items["templates"]),
            topics=tuple(items["topics"]),
            policies=policies,
            layouts=tuple(items["layouts"]),
        )
        for items in (found, best_effort)
    )
    return parsed


def _parse_item(
    kind: str,
    raw: Any,
    position: str,
    file: str,
    problems: list[DefinitionProblem],
    names: dict[tuple[str, str], str],
    relative_to: datetime | None,
) -> Any:
    """One named definition, best effort (see ``Parsed.checkable``); records duplicate names."""
    if not isinstance(raw, Mapping):
        problems.append(
            DefinitionProblem(
                file, position, "", f"expected a {kind} mapping with a name; got {describe(raw)}"
            )
        )
        return None
    name = raw.get("name")
    item = f"{kind} '{name}'" if isinstance(name, str) and name else position
    r = Reader(file, item, problems, relative_to)
    # An invalid name is reported, and the body is still read so all its problems show at once.
    if r.name(name, "name", f"{kind} name") is not None:
        if (kind, name) in names:
            r.problem("name", f"{kind} '{name}' is defined more than once in this file")
        names[(kind, name)] = file
    return _PARSERS[kind](r, raw, name if isinstance(name, str) else "")


def _segment(r: Reader, data: Mapping[str, Any], name: str) -> Segment | None:
    r.mapping(data, "", optional=("name", "description", "condition", "sql"))
    description = data.get("description", "")
    if not isinstance(description, str):
        r.problem("description", f"expected a string; got {describe(description)}")
    if ("condition" in data) == ("sql" in data):
        r.problem(
            "", "expected exactly one of condition (a segment condition) or sql (a dbt model body)"
        )
        return None
    origin = Origin(r.file, r.item)
    if "sql" in data:
        sql = r.string(data["sql"], "sql")
        return None if sql is None else Segment(name, origin, sql=sql, description=str(description))
    condition = parse_condition(r, data["condition"], "condition")
    return Segment(name, origin, condition=condition, description=str(description))


def _journey(r: Reader, data: Mapping[str, Any], name: str) -> Journey | None:
    return parse_journey(r, data, name)


def _template(r: Reader, data: Mapping[str, Any], name: str) -> Template | None:
    if "channel" not in data:
        r.problem("channel", f"missing; {one_of(CHANNELS)}")
        return None
    channel = r.choice(data["channel"], "channel", CHANNELS, "channel")
    fields = {key: value for key, value in data.items() if key not in ("name", "channel", "layout")}
    for key in fields:
        if not isinstance(key, str):
            r.problem(str(key), "template field names must be strings")
    layout = None
    if "layout" in data:
        layout = r.name(data["layout"], "layout", "layout name")
        if channel is not None and channel != "email":
            r.problem(
                "layout",
                f"layouts wrap an email's html; a {channel} template has none: remove layout",
            )
    if channel is None:
        return None
    return Template(name, channel, Origin(r.file, r.item), fields, layout)


def _layout(r: Reader, data: Mapping[str, Any], name: str) -> Layout | None:
    r.mapping(data, "", required=("name", "html"), optional=("description",))
    html = r.string(data.get("html"), "html") if "html" in data else None
    # Its Jinja (which must write ``{{ content }}``) is checked with the templates' in ``checks``.
    return None if html is None else Layout(name, Origin(r.file, r.item), html)


def _topic(r: Reader, data: Mapping[str, Any], name: str) -> Topic | None:
    start = r.problem_count
    r.mapping(data, "", optional=("name", "default", "description", "channels"))
    default = r.choice(
        data.get("default", "subscribed"), "default", ("subscribed", "unsubscribed"), "default"
    )
    description = r.string(data["description"], "description") if "description" in data else None
    channels = data.get("channels", [])
    if "channels" in data and r.list_of(channels, "channels", "channels") is not None:
        if not channels:
            r.problem("channels", f"expected at least one channel; {one_of(CHANNELS)}")
        for i, channel in enumerate(channels):
            if (
                r.choice(channel, sub("channels", i), CHANNELS, "channel")
                and channel in channels[:i]
            ):
                r.problem(sub("channels", i), f"channel '{channel}' is listed twice")
    if r.problem_count > start or default is None:
        return None
    return Topic(name, default == "subscribed", description, tuple(channels))


_PARSERS: dict[str, Callable[[Reader, Mapping[str, Any], str], Any]] = {
    "segment": _segment,
    "journey": _journey,
    "template": _template,
    "layout": _layout,
    "topic": _topic,
}


def _policies(r: Reader, value: Any) -> Policies | None:
    data = r.mapping(value, "", optional=("frequency_caps", "quiet_hours"))
    if data is None:
        return None
    start = r.problem_count
    caps: list[FrequencyCap] = []
    items = r.list_of(data.get("frequency_caps", []), "frequency_caps", "caps {channel, max, per}")
    for i, item in enumerate(items or []):
        at = sub("frequency_caps", i)
        cap = r.mapping(item, at, required=("channel", "max", "per"))
        if cap is None:
            continue
        channel = r.choice(cap["channel"], sub(at, "channel"), (*CHANNELS, "any"), "channel")
        most = r.count(cap["max"], sub(at, "max"))
        per = r.duration(cap["per"], sub(at, "per"))
        if channel is not None and most is not None and per is not None:
            caps.append(FrequencyCap(channel, most, per))
    quiet = None
    if "quiet_hours" in data:
        quiet = _quiet_hours(r, data["quiet_hours"], "quiet_hours")
    if r.problem_count > start:
        return None
    return Policies(tuple(caps), quiet)


def _quiet_hours(r: Reader, value: Any, path: str) -> QuietHours | None:
    data = r.mapping(
        value, path, required=("from", "to"), optional=("timezone_attribute", "default_timezone")
    )
    if data is None:
        return None
    begin, end, tz_attr, default_tz = r.clock_window(data, path)
    if begin is None or end is None or default_tz is None:
        return None
    return QuietHours(begin, end, tz_attr, default_tz)
