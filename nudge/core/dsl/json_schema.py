"""A JSON Schema (draft 2020-12) of one content file, built from the parser's own vocabularies.

Editors use it to complete and check YAML as it is typed (``# yaml-language-server: $schema=``
or a ``yaml.schemas`` setting). It describes shapes only; ``nudge validate`` stays the judge and
also checks what a schema cannot: references between definitions, cycles, template syntax.
Operators, channels and statuses come from the modules that parse them; a test holds the keys
of conditions, triggers, step kinds and journeys to the parser's lists, so the schema cannot fall
behind the parser. ``docs/schema/content.schema.json`` is this module's output (``nudge schema``),
and a test keeps the committed copy current.
"""

from __future__ import annotations

from typing import Any

from nudge.core.dsl.checks import REQUIRED_FIELDS
from nudge.core.dsl.conditions import TRIGGER_OPERATORS
from nudge.core.dsl.spec import (
    ATTRIBUTE_OPERATORS,
    CHANNELS,
    MESSAGE_STATUSES,
    SINCE_SCOPES,
    TIMES_OPERATORS,
)
from nudge.core.dsl.steps.window import WEEKDAYS

SCHEMA_ID = "https://nudge.dev/schema/content.schema.json"
Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/$defs/{name}"}


def strict(properties: Schema, required: tuple[str, ...] = (), description: str = "") -> Schema:
    """An object with exactly these keys (unknown keys are a problem for the parser too)."""
    shape: Schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        shape["required"] = list(required)
    if description:
        shape["description"] = description
    return shape


def one_key(options: dict[str, Schema], description: str) -> Schema:
    """A mapping with exactly one of ``options``' keys (a condition, a trigger, a step kind)."""
    return {
        "description": description,
        "oneOf": [strict({key: value}, required=(key,)) for key, value in options.items()],
    }


SCALAR: Schema = {"type": ["string", "number", "boolean"]}
DURATION: Schema = {
    "type": "string",
    "pattern": r"^\s*(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?\s*$",
    "description": "a duration such as 30m, 2d or 1w2d",
    "examples": ["30m", "2d", "1w"],
}
TIME_OF_DAY: Schema = {
    "type": "string",
    "pattern": r"^([01]?\d|2[0-3]):[0-5]\d$",
    "description": "a clock time HH:MM",
}
NAME: Schema = {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"}
PERCENT: Schema = {"type": "number", "minimum": 0, "maximum": 100}
COUNT: Schema = {"type": "integer", "minimum": 0}


def operand(op: str) -> Schema:
    match op:
        case "exists":
            return {"type": "boolean"}
        case "newer_than" | "older_than" | "within_next":
            return DURATION
        case "before" | "after":
            return {"type": "string", "description": "an ISO 8601 instant"}
        case "in":
            return {"type": "array", "items": SCALAR}
        case "starts_with":
            return {"type": "string"}
        case "gt" | "gte" | "lt" | "lte":
            return {"type": ["number", "string"]}
        case _:
            return SCALAR


def comparison(subject: str, subject_schema: Schema, *, trigger_refs: bool) -> Schema:
    """``{<subject>: ..., <operator>: value}`` with exactly one operator."""
    options = []
    for op in ATTRIBUTE_OPERATORS:
        value = operand(op)
        if trigger_refs and op in TRIGGER_OPERATORS:
            value = {"anyOf": [value, ref("trigger_ref")]}
        options.append(strict({subject: subject_schema, op: value}, required=(subject, op)))
    return {"oneOf": options}


def conditions() -> dict[str, Schema]:
    times = one_key({op: COUNT for op in TIMES_OPERATORS}, "how many times")
    by_key: dict[str, Schema] = {
        "all": {"type": "array", "items": ref("condition"), "minItems": 1},
        "any": {"type": "array", "items": ref("condition"), "minItems": 1},
        "not": ref("condition"),
        "everyone": {"const": True},
        "attribute": comparison("name", {"type": "string"}, trigger_refs=False),
        "performed": strict(
            {
                "event": {"type": "string"},
                "times": times,
                "within": DURATION,
                "where": {"type": "array", "items": ref("property_filter")},
                "since": {"enum": list(SINCE_SCOPES)},
            },
            required=("event",),
        ),
        "in_segment": {"type": "string", "description": "a segment name"},
        "message": strict(
            {
                "status": {"enum": list(MESSAGE_STATUSES)},
                "channel": {"enum": list(CHANNELS)},
                "journey": {"type": "string"},
                "template": {"type": "string"},
                "times": times,
                "within": DURATION,
            },
            required=("status",),
        ),
        "subscription": strict(
            {
                "topic": {"type": "string"},
                "subscribed": {"type": "boolean"},
                "channel": {"enum": list(CHANNELS)},
            },
            required=("topic", "subscribed"),
        ),
        "random_bucket": strict(
            {"percent": PERCENT, "salt": {"type": ["string", "integer"]}}, required=("percent",)
        ),
    }
    return by_key


def triggers() -> dict[str, Schema]:
    where = {"type": "array", "items": ref("property_filter")}
    by_key: dict[str, Schema] = {
        "segment_entered": {"type": "string", "description": "a segment name"},
        "segment_exited": {"type": "string", "description": "a segment name"},
        "event": {
            "anyOf": [
                {"type": "string", "description": "an event name"},
                strict({"name": {"type": "string"}, "where": where}, required=("name",)),
            ]
        },
        "attribute_changed": strict({"name": {"type": "string"}, "to": {}}, required=("name",)),
        "date": strict(
            {
                "attribute": {"type": "string"},
                "offset": {"type": "string", "description": "a duration, may start with -"},
                "at": TIME_OF_DAY,
                "timezone_attribute": {"type": "string"},
            },
            required=("attribute",),
        ),
        "broadcast": strict(
            {"segment": {"type": "string"}, "at": {"type": "string"}}, required=("segment",)
        ),
    }
    return by_key


def step_kinds() -> dict[str, Schema]:
    steps = {"type": "array", "items": ref("step")}
    by_key: dict[str, Schema] = {
        "send": strict(
            {
                "channel": {"enum": list(CHANNELS)},
                "template": {"type": "string"},
                "topic": {"type": "string"},
                "transactional": {"type": "boolean"},
            },
            required=("channel", "template"),
        ),
        "wait": DURATION,
        "wait_until": strict(
            {
                "condition": ref("condition"),
                "timeout": DURATION,
                "on_timeout": {"enum": ["exit", "continue"]},
            },
            required=("condition", "timeout"),
        ),
        "window": strict(
            {
                "from": TIME_OF_DAY,
                "to": TIME_OF_DAY,
                "days": {"type": "array", "items": {"enum": list(WEEKDAYS)}, "minItems": 1},
                "timezone_attribute": {"type": "string"},
                "default_timezone": {"type": "string"},
            },
            required=("from", "to"),
        ),
        "branch": strict({"if": ref("condition"), "then": steps, "else": steps}, required=("if",)),
        "split": {
            "type": "array",
            "minItems": 1,
            "items": strict({"percent": PERCENT, "steps": steps}, required=("percent", "steps")),
        },
        "update_attribute": strict(
            {"name": {"type": "string"}, "value": {}}, required=("name", "value")
        ),
        "exit": {"const": True},
    }
    return by_key


def step() -> Schema:
    return {
        "description": "a step: an id, an optional `if` and exactly one step kind",
        "oneOf": [
            strict(
                {"id": NAME, "if": ref("condition"), kind: value},
                required=("id", kind),
            )
            for kind, value in step_kinds().items()
        ],
    }


def journey() -> Schema:
    properties: Schema = {
        "name": NAME,
        "description": {"type": "string"},
        "trigger": ref("trigger"),
        "entry_filter": ref("condition"),
        "reentry": {
            "anyOf": [
                {"enum": ["never", "always"]},
                strict({"after": DURATION}, required=("after",)),
            ]
        },
        "exit_when": ref("condition"),
        "exit_on_trigger_lost": {"type": "boolean"},
        "goal": strict(
            {"condition": ref("condition"), "within": DURATION, "exit": {"type": "boolean"}},
            required=("condition",),
        ),
        "holdout": strict({"percent": PERCENT}, required=("percent",)),
        "max_event_age": DURATION,
        "steps": {"type": "array", "items": ref("step")},
    }
    return strict(properties, required=("name", "trigger", "steps"))


def template() -> Schema:
    """A template's fields are free-form per channel; the ones each channel needs are required."""
    variants = []
    for channel, groups in REQUIRED_FIELDS.items():
        needs: list[Schema] = [
            {"anyOf": [{"required": [field]} for field in group]} for group in groups
        ]
        if channel != "email":  # a layout wraps an email's html
            needs.append({"not": {"required": ["layout"]}})
        variants.append(
            {
                "properties": {"channel": {"const": channel}},
                "required": ["channel"],
                "allOf": needs,
            }
        )
    return {
        "type": "object",
        "properties": {
            "name": NAME,
            "channel": {"enum": list(CHANNELS)},
            "layout": {**NAME, "description": "an email layout's name (layouts:)"},
        },
        "required": ["name", "channel"],
        "oneOf": variants,
    }


def content_schema() -> Schema:
    """The schema of one content file (YAML or JSON)."""
    top: Schema = {
        "segments": {"type": "array", "items": ref("segment")},
        "journeys": {"type": "array", "items": ref("journey")},
        "templates": {"type": "array", "items": ref("template")},
        "layouts": {"type": "array", "items": ref("layout")},
        "topics": {"type": "array", "items": ref("topic")},
        "policies": ref("policies"),
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "nudge content file",
        "description": "Segments, journeys, templates, layouts, topics and policies (nudge validate).",
        "type": "object",
        "properties": top,
        "additionalProperties": False,
        "$defs": {
            "condition": one_key(conditions(), "a condition: a mapping with exactly one key"),
            "property_filter": comparison("property", {"type": "string"}, trigger_refs=True),
            "trigger_ref": strict({"trigger": {"type": "string"}}, required=("trigger",)),
            "trigger": one_key(triggers(), "what admits people: exactly one trigger"),
            "step": step(),
            "segment": {
                **strict(
                    {
                        "name": NAME,
                        "description": {"type": "string"},
                        "condition": ref("condition"),
                        "sql": {"type": "string", "description": "a dbt model body"},
                    },
                    required=("name",),
                ),
                "oneOf": [{"required": ["condition"]}, {"required": ["sql"]}],
            },
            "journey": journey(),
            "template": template(),
            "layout": strict(
                {
                    "name": NAME,
                    "description": {"type": "string"},
                    "html": {
                        "type": "string",
                        "description": "HTML with {{ content }} where the template's html goes",
                    },
                },
                required=("name", "html"),
            ),
            "topic": strict(
                {
                    "name": NAME,
                    "default": {"enum": ["subscribed", "unsubscribed"]},
                    "description": {"type": "string"},
                    "channels": {
                        "type": "array",
                        "items": {"enum": list(CHANNELS)},
                        "minItems": 1,
                        "uniqueItems": True,
                    },
                },
                required=("name",),
            ),
            "policies": strict(
                {
                    "frequency_caps": {
                        "type": "array",
                        "items": strict(
                            {
                                "channel": {"enum": [*CHANNELS, "any"]},
                                "max": COUNT,
                                "per": DURATION,
                            },
                            required=("channel", "max", "per"),
                        ),
                    },
                    "quiet_hours": strict(
                        {
                            "from": TIME_OF_DAY,
                            "to": TIME_OF_DAY,
                            "timezone_attribute": {"type": "string"},
                            "default_timezone": {"type": "string"},
                        },
                        required=("from", "to"),
                    ),
                }
            ),
        },
    }
