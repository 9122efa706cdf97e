"""Reading scenario files (``docs/scenarios.md``) into steps the runner executes.

Extension: a top-level ``dbt_models`` mapping adds files to the scenario's dbt project, each
under ``models/`` by its path in the project (``models/marts/vip_customers.sql: <model text>``),
so a scenario can bring a SQL segment model tagged ``segment`` wherever it lives, or a
properties file that tags one. Files of the project itself cannot be replaced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from nudge.core.clock import parse_iso_instant, to_utc_naive
from nudge.core.dsl.durations import parse_duration

SCENARIO_KEYS = ("name", "start", "steps")
EXTENSION_KEYS = ("dbt_models",)
DBT_MODEL_SUFFIXES = (".sql", ".yml", ".yaml")
# Written by the assembly step from YAML segments; never taken from a scenario.
GENERATED_MODELS = PurePosixPath("models/segments/generated")
DEFINITION_KEYS = ("segments", "journeys", "templates", "topics", "policies")
STEP_KINDS = ("events", "run", "expect", "define")
EXPECT_KEYS = ("segments", "sent", "journey_members")
SENT_KEYS = ("user", "journey", "step", "channel")


class ScenarioFormatError(ValueError):
    """A scenario file that does not follow the format; the message names file and step."""


@dataclass(frozen=True)
class Step:
    index: int
    kind: str
    body: Any


@dataclass(frozen=True)
class Scenario:
    path: Path
    name: str
    start: datetime  # naive UTC
    definitions: dict[str, Any]
    steps: tuple[Step, ...] = field(default_factory=tuple)
    # Extra dbt project files by project-relative path (see the module docstring).
    dbt_models: dict[str, str] = field(default_factory=dict)

    def resolve_time(self, value: Any, where: str) -> datetime:
        """``"+3s"`` is an offset from ``start``; anything else is an ISO 8601 instant."""
        return resolve_time(self.start, value, f"{self.path}: {where}")

    def run_at(self, step: Step) -> datetime:
        """The ``as_of`` of a ``run`` step."""
        return self.resolve_time(step.body["at"], f"steps[{step.index}].run.at")


def parse_instant(value: Any, where: str) -> datetime:
    if isinstance(value, datetime):  # YAML reads an unquoted timestamp as one
        return to_utc_naive(value)
    try:
        return parse_iso_instant(str(value))
    except ValueError:
        raise ScenarioFormatError(
            f"{where}: {value!r} is not an ISO 8601 time or a '+<duration>' offset"
        ) from None


def resolve_time(start: datetime, value: Any, where: str) -> datetime:
    text = str(value)
    if re.fullmatch(r"\+\S+", text):
        try:
            return start + parse_duration(text[1:])
        except ValueError as error:
            raise ScenarioFormatError(f"{where}: {error}") from None
    return parse_instant(value, where)


def load_scenario(path: Path) -> Scenario:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ScenarioFormatError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ScenarioFormatError(f"{path}: a scenario is a mapping with name, start and steps")
    known = SCENARIO_KEYS + DEFINITION_KEYS + EXTENSION_KEYS
    unknown = set(data) - set(known)
    if unknown:
        raise ScenarioFormatError(
            f"{path}: unknown top-level key(s) {sorted(unknown)}; expected {', '.join(known)}"
        )
    for key in SCENARIO_KEYS:
        if key not in data:
            raise ScenarioFormatError(f"{path}: missing '{key}'")
    start = parse_instant(data["start"], f"{path}: start")
    raw_steps = data["steps"]
    if not isinstance(raw_steps, list):
        raise ScenarioFormatError(f"{path}: steps must be a list")
    steps = tuple(parse_step(path, index, raw) for index, raw in enumerate(raw_steps))
    definitions = {key: data[key] for key in DEFINITION_KEYS if key in data}
    dbt_models = parse_dbt_models(path, data.get("dbt_models") or {})
    return Scenario(path, str(data["name"]), start, definitions, steps, dbt_models)


def parse_dbt_models(path: Path, raw: Any) -> dict[str, str]:
    """``dbt_models``: project-relative file path under ``models/`` -> file text."""
    where = f"{path}: dbt_models"
    if not isinstance(raw, dict):
        raise ScenarioFormatError(f"{where}: a mapping of models/<path> to the file's text")
    models: dict[str, str] = {}
    for name, text in raw.items():
        relative = PurePosixPath(str(name))
        if (
            relative.is_absolute()
            or ".." in relative.parts
            or relative.parts[0] != "models"
            or relative.suffix not in DBT_MODEL_SUFFIXES
            or relative.is_relative_to(GENERATED_MODELS)
        ):
            raise ScenarioFormatError(
                f"{where}: {name!r} must be a path under models/ (not {GENERATED_MODELS}/) "
                f"ending in {', '.join(DBT_MODEL_SUFFIXES)}"
            )
        if not isinstance(text, str):
            raise ScenarioFormatError(f"{where}.{name}: the file's text, as a string")
        models[relative.as_posix()] = text
    return models


def parse_step(path: Path, index: int, raw: Any) -> Step:
    where = f"{path}: steps[{index}]"
    if not isinstance(raw, dict) or len(raw) != 1:
        raise ScenarioFormatError(f"{where}: a step has exactly one of {', '.join(STEP_KINDS)}")
    [(kind, body)] = raw.items()
    if kind not in STEP_KINDS:
        raise ScenarioFormatError(
            f"{where}: unknown step '{kind}'; expected {', '.join(STEP_KINDS)}"
        )
    if kind == "events" and not isinstance(body, list):
        raise ScenarioFormatError(f"{where}.events: a list of Segment-spec messages")
    if kind == "run" and not (isinstance(body, dict) and "at" in body):
        raise ScenarioFormatError(f"{where}.run: expected {{at: <time>}}")
    if kind == "expect":
        if not isinstance(body, dict) or set(body) - set(EXPECT_KEYS):
            raise ScenarioFormatError(f"{where}.expect: keys are {', '.join(EXPECT_KEYS)}")
        for item in body.get("sent") or []:
            if not isinstance(item, dict) or set(item) - set(SENT_KEYS):
                raise ScenarioFormatError(
                    f"{where}.expect.sent: each item has {', '.join(SENT_KEYS)}"
                )
    if kind == "define" and not isinstance(body, dict):
        raise ScenarioFormatError(f"{where}.define: a mapping of definitions")
    return Step(index, kind, body)
