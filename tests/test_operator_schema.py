"""The JSON Schema of content files: current, valid, and true of every example the project ships."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from nudge.core.dsl import json_schema
from nudge.core.dsl.conditions import CONDITION_KEYS
from nudge.core.dsl.journeys import JOURNEY_KEYS, STEP_KINDS, TRIGGER_KEYS
from nudge.core.dsl.parse import TOP_LEVEL_KEYS

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "docs" / "schema" / "content.schema.json"
FENCE = re.compile(r"^```yaml[ \t]*\n(.*?)^```", re.DOTALL | re.MULTILINE)


def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json_schema.content_schema())


def test_the_published_schema_is_current_and_printed_by_nudge_schema() -> None:
    current = json_schema.content_schema()
    assert json.loads(PUBLISHED.read_text()) == current, (
        "docs/schema/content.schema.json is stale: nudge schema > docs/schema/content.schema.json"
    )
    printed = subprocess.run(
        [sys.executable, "-m", "nudge.cli", "schema"], capture_output=True, text=True, check=True
    )
    assert json.loads(printed.stdout) == current
    jsonschema.Draft202012Validator.check_schema(current)


def test_the_schema_describes_every_key_the_parser_knows() -> None:
    schema = json_schema.content_schema()
    defs = schema["$defs"]
    assert set(schema["properties"]) == set(TOP_LEVEL_KEYS)
    assert set(defs["journey"]["properties"]) == set(JOURNEY_KEYS)
    assert {next(iter(o["properties"])) for o in defs["condition"]["oneOf"]} == set(CONDITION_KEYS)
    assert {next(iter(o["properties"])) for o in defs["trigger"]["oneOf"]} == set(TRIGGER_KEYS)
    assert {list(o["properties"])[-1] for o in defs["step"]["oneOf"]} == set(STEP_KINDS)


def shipped_examples() -> list[tuple[str, str]]:
    """(where, YAML text) of every example content file and docs content example."""
    found = [
        (str(p.relative_to(ROOT)), p.read_text()) for p in sorted((ROOT / "content").glob("*.yml"))
    ]
    for doc in sorted((ROOT / "docs").glob("*.md")):
        text = doc.read_text()
        for match in FENCE.finditer(text):
            body = match.group(1)
            data = yaml.safe_load(body)
            fragment = body.lstrip().startswith("# fragment")
            scenario = isinstance(data, dict) and "steps" in data and "start" in data
            if not fragment and not scenario:
                line = text.count("\n", 0, match.start()) + 1
                found.append((f"docs/{doc.name}:{line}", body))
    return found


@pytest.mark.parametrize(("where", "text"), shipped_examples(), ids=lambda v: v[:40])
def test_every_shipped_example_validates(where: str, text: str) -> None:
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"[:300]
              for e in validator().iter_errors(yaml.safe_load(text) or {})]  # fmt: skip
    assert not errors, f"{where}: " + "\n".join(errors)


@pytest.mark.parametrize(
    "bad",
    [
        {"segments": [{"name": "x", "condition": {"attribut": {"name": "a", "eq": 1}}}]},
        {"journeys": [{"name": "j", "trigger": {"segment_entered": "x"},
                       "steps": [{"id": "s", "wait": "two days"}]}]},
        {"templates": [{"name": "t", "channel": "email", "html": "<p>no subject</p>"}]},
        {"policies": {"quiet_hours": {"from": 1260, "to": "08:00"}}},
        {"segment": []},
    ],
)  # fmt: skip
def test_the_schema_rejects_what_validate_rejects(bad: dict) -> None:
    assert list(validator().iter_errors(bad))
