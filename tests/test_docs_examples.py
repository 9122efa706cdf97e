"""Every YAML example in docs/*.md is valid, so the documentation cannot drift from the code.

A page's content examples are loaded together as one content folder by the loader ``nudge
validate`` uses (so an example may use a template or segment another example on the same page
defines); each scenario example is read by the scenario loader and its definitions and events are
checked as ``nudge scenario run`` would before its first run. A block whose first line is
``# fragment`` is deliberately partial and only has to be YAML. The examples must also show every
condition, operator, trigger, step kind, journey setting and scenario step the code accepts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from nudge.core.checked_content import load_workspace_content, validate_content
from nudge.core.dsl.conditions import CONDITION_KEYS
from nudge.core.dsl.journeys import JOURNEY_KEYS, STEP_KINDS, TRIGGER_KEYS
from nudge.core.dsl.load import merge_content, parse_definitions
from nudge.core.dsl.parse import TOP_LEVEL_KEYS
from nudge.core.dsl.problems import DefinitionError
from nudge.core.dsl.spec import ATTRIBUTE_OPERATORS, CHANNELS, SINCE_SCOPES, TIMES_OPERATORS
from nudge.core.landing.messages import normalise_message
from nudge.core.warehouse.dbt import sql_segment_models
from nudge.core.workspace import Workspace
from nudge.devtools.scenarios import model as scenario_model
from nudge.devtools.scenarios.runner import scenario_dbt_source

DOCS = Path(__file__).resolve().parents[1] / "docs"
FENCE = re.compile(r"^```yaml[ \t]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
FRAGMENT = "# fragment"


@dataclass(frozen=True)
class Example:
    doc: str  # file name under docs/
    line: int  # line of the opening fence
    text: str

    @property
    def label(self) -> str:
        return f"{self.doc}:{self.line}"

    @property
    def file_name(self) -> str:
        """A content file name that says where the example is (problems name their file)."""
        return f"{Path(self.doc).stem}_line{self.line}.yml"

    @property
    def is_fragment(self) -> bool:
        return self.text.lstrip().startswith(FRAGMENT)

    def data(self) -> Any:
        return yaml.safe_load(self.text)

    @property
    def is_scenario(self) -> bool:
        data = self.data()
        return isinstance(data, dict) and "steps" in data and "start" in data


def examples_in(doc: Path) -> list[Example]:
    text = doc.read_text(encoding="utf-8")
    return [
        Example(doc.name, text.count("\n", 0, match.start()) + 1, match.group(1))
        for match in FENCE.finditer(text)
    ]


def all_examples() -> list[Example]:
    return [example for doc in sorted(DOCS.glob("*.md")) for example in examples_in(doc)]


def content_problems(examples: list[Example], tmp_path: Path) -> str | None:
    """The problems ``nudge validate`` reports for these examples as one content folder."""
    folder = tmp_path / "content"
    folder.mkdir(parents=True)
    for example in examples:
        (folder / example.file_name).write_text(example.text, encoding="utf-8")
    workspace = Workspace(home=tmp_path / "home", content_dir=folder)
    try:
        load_workspace_content(workspace)
    except DefinitionError as error:
        return str(error)
    return None


def scenario_problems(example: Example, tmp_path: Path) -> str | None:
    """What loading the scenario, checking its definitions and landing its events would refuse."""
    path = tmp_path / example.file_name
    path.write_text(example.text, encoding="utf-8")
    try:
        scenario = scenario_model.load_scenario(path)
        sql_segments = sql_segment_models(scenario_dbt_source(scenario, tmp_path / "home"))
        content, problems = parse_definitions(scenario.definitions, str(path))
        for step in scenario.steps:
            if step.kind == "define":
                more, more_problems = parse_definitions(step.body, str(path))
                problems += more_problems
                content = merge_content(content, more, override_policies="policies" in step.body)
            elif step.kind == "events":
                for message in step.body:
                    message = dict(message)
                    if "at" in message:
                        at = scenario.resolve_time(message.pop("at"), f"steps[{step.index}]")
                        message["timestamp"] = at.isoformat() + "Z"
                    normalise_message(message, datetime.now(UTC))
            elif step.kind == "run":
                scenario.resolve_time(step.body["at"], f"steps[{step.index}].run.at")
        if problems:
            raise DefinitionError(problems)
        validate_content(content, sql_segments)
    except (DefinitionError, ValueError) as error:
        return str(error)
    return None


def content_examples(doc: str) -> list[Example]:
    return [e for e in all_examples() if e.doc == doc and not e.is_fragment and not e.is_scenario]


DOC_NAMES = sorted({e.doc for e in all_examples() if not e.is_fragment and not e.is_scenario})
SCENARIOS = [e for e in all_examples() if not e.is_fragment and e.is_scenario]


def test_the_docs_have_examples_of_every_kind() -> None:
    assert "authoring.md" in DOC_NAMES
    assert [e.doc for e in SCENARIOS].count("scenarios.md") >= 2


@pytest.mark.parametrize("example", all_examples(), ids=lambda e: e.label)
def test_every_example_is_yaml(example: Example) -> None:
    assert example.data() is not None, f"{example.label}: an empty YAML block"


@pytest.mark.parametrize("doc", DOC_NAMES)
def test_content_examples_pass_validate(doc: str, tmp_path: Path) -> None:
    problems = content_problems(content_examples(doc), tmp_path)
    assert problems is None, f"docs/{doc} has invalid examples:\n{problems}"


@pytest.mark.parametrize("example", SCENARIOS, ids=lambda e: e.label)
def test_scenario_examples_load(example: Example, tmp_path: Path) -> None:
    problems = scenario_problems(example, tmp_path)
    assert problems is None, f"docs/{example.label} is not a valid scenario:\n{problems}"


BROKEN_CONTENT = """\
segments:
  - name: typo
    condition: {attribute: {name: plan, equals: pro}}
"""
BROKEN_SCENARIO = """\
name: broken
start: "2026-01-01T00:00:00Z"
steps:
  - events:
      - {type: track, userId: u1, at: "+0s"}
"""


def test_a_broken_example_is_reported(tmp_path: Path) -> None:
    """The checks above would catch an example that stopped being valid."""
    content = Example("broken.md", 7, BROKEN_CONTENT)
    found = content_problems([content], tmp_path / "content_case")
    assert (
        found is not None and "broken_line7.yml" in found and "unknown operator 'equals'" in found
    )

    scenario = Example("broken.md", 9, BROKEN_SCENARIO)
    (tmp_path / "scenario_case").mkdir()
    found = scenario_problems(scenario, tmp_path / "scenario_case")
    assert found == "track without event"


def keys_and_values(value: Any) -> Iterator[str]:
    """Every mapping key and scalar string in a YAML document, at any depth."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from keys_and_values(item)
    elif isinstance(value, list):
        for item in value:
            yield from keys_and_values(item)
    elif isinstance(value, str):
        yield value


# Options whose names appear only inside the parsers' calls (no constant to import).
OPTIONS = (
    "always", "after", "never", "continue", "on_timeout", "within", "where", "times",
    "transactional", "topic", "frequency_caps", "quiet_hours", "timezone_attribute",
    "default_timezone", "days", "offset", "salt", "subscribed", "sql", "default", "channels",
)  # fmt: skip


def test_the_examples_show_everything_the_formats_accept() -> None:
    shown = {
        word for e in all_examples() if not e.is_fragment for word in keys_and_values(e.data())
    }
    expected = {
        "top-level key": TOP_LEVEL_KEYS,
        "condition": CONDITION_KEYS,
        "attribute operator": ATTRIBUTE_OPERATORS,
        "times operator": TIMES_OPERATORS,
        "since scope": SINCE_SCOPES,
        "trigger": TRIGGER_KEYS,
        "step kind": STEP_KINDS,
        "journey setting": JOURNEY_KEYS,
        "channel": CHANNELS,
        "scenario key": scenario_model.SCENARIO_KEYS + scenario_model.EXTENSION_KEYS,
        "scenario step": scenario_model.STEP_KINDS,
        "expectation": scenario_model.EXPECT_KEYS,
        "option": OPTIONS,
    }
    missing = [
        f"{what} {name}" for what, names in expected.items() for name in names if name not in shown
    ]
    assert not missing, f"no example in docs/*.md shows: {', '.join(missing)}"
