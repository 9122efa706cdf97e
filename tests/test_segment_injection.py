"""Hostile values and names in every field of every condition, through the full path: scenario YAML
-> validation -> generated dbt segment models -> dbt build in a real workspace -> memberships.

Values are only ever strings: nothing executes (a canary table and the raw events survive), a value
matches exactly the user who has that very string and nobody else. Names (trait names, property
paths, segment names, topics, journeys and templates in message conditions) outside the allowlist are refused before anything is built, with a
message naming the segment and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from nudge.core.dsl.problems import DefinitionError
from nudge.core.segments.comparisons import ConditionError
from nudge.core.warehouse.connection import connect
from nudge.devtools.scenarios.model import ScenarioFormatError, load_scenario
from nudge.devtools.scenarios.runner import ScenarioRun

DROP = "drop table main.canary"
HOSTILE = [
    f"x'; {DROP}; --",
    f'x"; {DROP}; --',
    f"{{{{ run_query('{DROP}') }}}}",
    f"{{% do run_query('{DROP}') %}}",
    "{# unterminated comment",
    f"\\'; {DROP}; --",
    f"$.a[0]'); {DROP}; --",
    "x') or 1=1 --",
    "%",
    "_",
    "ok}} {{",
]


def _condition_fields(k: int, value: str) -> list[dict[str, Any]]:
    """Conditions with ``value`` in every value-carrying field; each matches only the user holding
    that exact string (``holder<k>``; each value has its own trait and property names, so one
    hostile value can never be a substring of another's data)."""
    return [
        {"attribute": {"name": f"plan{k}", "eq": value}},
        {"attribute": {"name": f"plan{k}", "in": [value, "nothing"]}},
        {"attribute": {"name": f"plan{k}", "contains": value}},
        {"attribute": {"name": f"tags{k}", "contains": value}},
        {"attribute": {"name": f"plan{k}", "starts_with": value}},
        {"performed": {"event": value}},
        {"performed": {"event": "order", "where": [{"property": f"coupon{k}", "eq": value}]}},
    ]


def _scenario(tmp_path: Path) -> tuple[Path, int]:
    """One scenario holding every hostile value (one dbt build for all of them)."""
    segments: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    expected: dict[str, list[str]] = {}
    users = [f"holder{k}" for k in range(len(HOSTILE))] + ["other"]
    for k, value in enumerate(HOSTILE):
        conditions = _condition_fields(k, value)
        segments += [{"name": f"v{k}_s{i}", "condition": c} for i, c in enumerate(conditions)]
        segments += [
            {"name": f"v{k}_negated", "condition": {"not": conditions[0]}},
            {
                "name": f"v{k}_salted",
                "condition": {"random_bucket": {"percent": 100, "salt": value}},
            },
        ]
        holder = f"holder{k}"
        events += [
            {
                "type": "identify",
                "userId": holder,
                "traits": {f"plan{k}": value, f"tags{k}": [value]},
            },
            {"type": "track", "userId": holder, "event": value},
            {
                "type": "track",
                "userId": holder,
                "event": "order",
                "properties": {f"coupon{k}": value},
            },
        ]
        expected |= {f"v{k}_s{i}": [holder] for i in range(len(conditions))}
        expected |= {
            f"v{k}_negated": sorted(u for u in users if u != holder),
            f"v{k}_salted": sorted(users),
        }
    events += [
        {
            "type": "identify",
            "userId": "other",
            "traits": {f"plan{k}": "pro" for k in range(len(HOSTILE))},
        },
        {"type": "track", "userId": "other", "event": "order", "properties": {"coupon0": "X"}},
    ]
    data = {
        "name": "injection",
        "start": "2026-03-01T00:00:00Z",
        "segments": segments,
        "steps": [
            {"events": [event | {"at": "+0s"} for event in events]},
            {"run": {"at": "+1m"}},
            {"expect": {"segments": expected}},
        ],
    }
    path = tmp_path / "scenario.yml"
    path.write_text(yaml.safe_dump(data))
    return path, len(events)


@pytest.mark.slow
def test_hostile_values_are_just_strings_through_dbt(tmp_path: Path) -> None:
    path, landed = _scenario(tmp_path)
    scenario = load_scenario(path)
    run = ScenarioRun(scenario, tmp_path / "workspace")
    with connect(run.workspace.warehouse_path) as con:
        con.execute("create table main.canary (x integer); insert into main.canary values (1)")
    failures = []
    for step in scenario.steps:
        failures += getattr(run, step.kind)(step)
    assert not failures, "\n".join(map(str, failures))
    with connect(run.workspace.warehouse_path) as con:
        assert con.execute("select count(*) from main.canary").fetchone() == (1,)
        assert con.execute("select count(*) from raw.events").fetchone() == (landed,)
        assert con.execute("select count(*) from marts.dim_users").fetchone() == (len(HOSTILE) + 1,)


HOSTILE_NAMES = [f"x'; {DROP}; --", "a{{b}}", 'a"b', "a]b", "a\\b", "a\nb", ""]


def _refused(tmp_path: Path, segment: dict[str, Any], topics: list[Any] | None = None) -> str:
    data: dict[str, Any] = {
        "name": "refused",
        "start": "2026-03-01T00:00:00Z",
        "segments": [segment],
        "steps": [{"run": {"at": "+1m"}}],
    }
    if topics:
        data["topics"] = topics
    path = tmp_path / "refused.yml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises((DefinitionError, ScenarioFormatError, ConditionError)) as raised:
        ScenarioRun(load_scenario(path), tmp_path / "workspace")
    return str(raised.value)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_trait_names_and_paths_are_refused(tmp_path: Path, name: str) -> None:
    for condition in (
        {"attribute": {"name": name, "exists": True}},
        {"performed": {"event": "order", "where": [{"property": f"a.{name}", "eq": 1}]}},
    ):
        message = _refused(tmp_path, {"name": "seg", "condition": condition})
        assert "seg" in message, message


@pytest.mark.parametrize("name", HOSTILE_NAMES[:4])
def test_hostile_segment_topic_and_reference_names_are_refused(tmp_path: Path, name: str) -> None:
    everyone = {"everyone": True}
    assert "name" in _refused(tmp_path, {"name": name, "condition": everyone})
    message = _refused(tmp_path, {"name": "seg", "condition": {"in_segment": name}})
    assert "seg" in message
    for message in ({"status": "sent", "journey": name}, {"status": "sent", "template": name}):
        assert "seg" in _refused(tmp_path, {"name": "seg", "condition": {"message": message}})
    topic = {"subscription": {"topic": name, "subscribed": True}}
    message = _refused(tmp_path, {"name": "seg", "condition": topic}, [{"name": name}])
    assert "seg" in message or "topic" in message
