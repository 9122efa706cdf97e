"""Running scenario files: definitions, then events, runs and expectations against a fresh workspace.

Each ``run`` step is a full pipeline run through ``orchestration.stages.run_pipeline`` (the functions
the Dagster assets wrap), with the capturing test provider on every channel: real rendering,
policies and ledger, no network. A scenario with ``dbt_models`` runs against its own copy of the
dbt project with those files added (``scenario_dbt_source``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nudge.core.checked_content import validate_content
from nudge.core.dsl.load import merge_content, parse_definitions
from nudge.core.dsl.problems import DefinitionError
from nudge.core.dsl.spec import CHANNELS, Content
from nudge.core.landing.writer import land_messages
from nudge.core.warehouse.connection import connect
from nudge.core.warehouse.dbt import DbtWorkspaceProject, copy_dbt_project, sql_segment_models
from nudge.core.warehouse.postgres import database_of_its_own, new_database
from nudge.core.warehouse.schema import ensure_tables
from nudge.core.workspace import Workspace
from nudge.devtools.scenarios.model import Scenario, ScenarioFormatError, Step
from orchestration.stages import prepare_project, run_pipeline
from senders.capture import CapturingProvider

SENT_FIELDS = ("user", "journey", "step", "channel")
# The name of every scenario's Postgres database in this process (one scenario at a time): dbt's
# manifest names the database in each relation and its partial parsing is thrown away when the
# URL in profiles.yml changes, so a name kept from one scenario to the next lets the next parse
# start from the last one's state (seconds per scenario). Each scenario still gets a database of
# its own: created before it, dropped after it.
_SCENARIO_DATABASE = f"nudge_scenario_{uuid.uuid4().hex[:16]}"


@dataclass(frozen=True)
class Failure:
    step: int
    what: str
    expected: Any
    found: Any

    def __str__(self) -> str:
        return (
            f"steps[{self.step}] {self.what}\n"
            f"      expected: {self.expected}\n"
            f"      found:    {self.found}"
        )


@dataclass
class ScenarioResult:
    scenario: Scenario
    failures: list[Failure] = field(default_factory=list)
    runs: int = 0

    @property
    def passed(self) -> bool:
        return not self.failures


class ScenarioRun:
    """The state of one scenario being run: its workspace, content and captured messages."""

    def __init__(self, scenario: Scenario, home: Path) -> None:
        self.scenario = scenario
        self.workspace = Workspace(home=home, content_dir=scenario.path.parent).ensure()
        self.dbt_source = scenario_dbt_source(scenario, home)
        self.sql_segments = sql_segment_models(self.dbt_source)
        self.content = self.definitions(scenario.definitions, "the scenario's definitions")
        self.project: DbtWorkspaceProject = prepare_project(
            self.workspace, self.content, dbt_source=self.dbt_source
        )
        self.providers = {channel: CapturingProvider(channel) for channel in CHANNELS}
        self.seen = 0
        with connect(self.workspace.warehouse_path) as con:
            ensure_tables(con)

    def definitions(self, data: dict[str, Any], where: str, base: Content | None = None) -> Content:
        content, problems = parse_definitions(data, str(self.scenario.path))
        if problems:
            raise DefinitionError(problems)
        if base is not None:
            content = merge_content(base, content, override_policies="policies" in data)
        try:
            validate_content(content, self.sql_segments)
        except DefinitionError as error:
            raise ScenarioFormatError(f"{self.scenario.path}: {where}:\n{error}") from None
        return content

    def captured(self) -> list[dict[str, str]]:
        messages = [m for provider in self.providers.values() for m in provider.messages]
        return [
            {"user": m.user_id, "journey": m.journey, "step": m.step, "channel": m.channel}
            for m in messages
        ]

    def events(self, step: Step) -> list[Failure]:
        messages = []
        for number, raw in enumerate(step.body):
            message = dict(raw)
            at = message.pop("at", None)
            if at is not None:
                message["timestamp"] = (
                    self.scenario.resolve_time(
                        at, f"steps[{step.index}].events[{number}].at"
                    ).isoformat()
                    + "Z"
                )
            messages.append(message)
        result = land_messages(self.workspace.events_landing_dir, messages)
        return [
            Failure(step.index, f"events[{r.index}] was rejected", "a valid message", r.reason)
            for r in result.rejected
        ]

    def run(self, step: Step) -> list[Failure]:
        as_of = self.scenario.run_at(step)
        run_pipeline(self.workspace, self.content, self.project, self.providers, as_of=as_of)
        return []

    def define(self, step: Step) -> list[Failure]:
        self.content = self.definitions(step.body, f"steps[{step.index}].define", self.content)
        self.project = prepare_project(self.workspace, self.content, dbt_source=self.dbt_source)
        return []

    def expect(self, step: Step) -> list[Failure]:
        failures: list[Failure] = []
        with connect(self.workspace.warehouse_path, read_only=True) as con:
            for segment, expected in (step.body.get("segments") or {}).items():
                found = sorted(
                    row[0]
                    for row in con.execute(
                        "select user_id from marts.fct_segment_memberships where segment = ?",
                        [segment],
                    ).fetchall()
                )
                if sorted(expected or []) != found:
                    failures.append(
                        Failure(step.index, f"segment {segment}", sorted(expected or []), found)
                    )
            for journey, expected in (step.body.get("journey_members") or {}).items():
                found = sorted(
                    row[0]
                    for row in con.execute(
                        "select user_id from nudge.journey_entries"
                        " where journey = ? and status = 'active'",
                        [journey],
                    ).fetchall()
                )
                if sorted(expected or []) != found:
                    failures.append(
                        Failure(
                            step.index, f"journey_members {journey}", sorted(expected or []), found
                        )
                    )
        if "sent" in step.body:
            sent = self.captured()[self.seen :]
            expected = step.body.get("sent") or []
            if not same_messages(expected, sent):
                failures.append(Failure(step.index, "sent", sort_sent(expected), sort_sent(sent)))
        self.seen = len(self.captured())
        return failures


def scenario_dbt_source(scenario: Scenario, home: Path) -> Path | None:
    """The dbt project with the scenario's ``dbt_models`` added (``home/dbt_source``), or None
    (the default project) when it has none."""
    if not scenario.dbt_models:
        return None
    source = copy_dbt_project(home / "dbt_source")
    for name, text in scenario.dbt_models.items():
        path = source / name
        if path.exists():
            raise ScenarioFormatError(
                f"{scenario.path}: dbt_models: {name} is a file of the dbt project; "
                "a scenario adds files, it does not replace them"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return source


def matches(expected: dict[str, str], found: dict[str, str]) -> bool:
    return all(str(found[key]) == str(value) for key, value in expected.items())


def same_messages(expected: list[dict[str, str]], found: list[dict[str, str]]) -> bool:
    """Multiset equality; a field left out of an expected item matches any value."""
    remaining = list(found)
    for item in sorted(expected, key=len, reverse=True):
        match = next((f for f in remaining if matches(item, f)), None)
        if match is None:
            return False
        remaining.remove(match)
    return not remaining


def sort_sent(items: Iterable[dict[str, str]]) -> list[dict[str, str]]:
    return sorted(
        ({k: item[k] for k in SENT_FIELDS if k in item} for item in items),
        key=lambda item: tuple(str(item.get(k, "")) for k in SENT_FIELDS),
    )


def run_scenario(
    scenario: Scenario,
    home: Path,
    progress: Callable[[str], None] | None = None,
    *,
    warehouse: str = "duckdb",
) -> ScenarioResult:
    """Run ``scenario`` in a fresh workspace at ``home``; on ``warehouse="postgres"`` in a
    database of its own on the server of ``NUDGE_POSTGRES_URL``, dropped afterwards."""
    result = ScenarioResult(scenario)
    with scenario_warehouse(warehouse):
        state = ScenarioRun(scenario, home)
        for step in scenario.steps:
            if progress:
                progress(f"{scenario.name}: steps[{step.index}] {step.kind}")
            result.failures += getattr(state, step.kind)(step)
            result.runs += step.kind == "run"
    return result


def scenario_database() -> AbstractContextManager[str]:
    """A new database for one scenario (collation C, named ``_SCENARIO_DATABASE``: one name per
    process keeps dbt's partial parsing valid) on the server of ``NUDGE_POSTGRES_URL``; yields
    its URL and drops it when the block ends."""
    return new_database(_SCENARIO_DATABASE)


@contextmanager
def scenario_warehouse(kind: str) -> Iterator[None]:
    """Nothing for DuckDB (the workspace holds its file). For Postgres: a database of its own
    (``database_of_its_own``, named ``_SCENARIO_DATABASE``) while the block runs, dropped
    afterwards."""
    if kind == "duckdb":
        yield
        return
    if kind != "postgres":
        raise ScenarioFormatError(f"--warehouse {kind}: scenarios run on duckdb or postgres")
    with database_of_its_own(_SCENARIO_DATABASE):
        yield
