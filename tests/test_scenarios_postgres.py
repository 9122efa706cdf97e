"""Every scenario file passes on PostgreSQL too: the whole pipeline (load, dbt, journeys, sending,
reports) on a database of its own per scenario (``run_scenario(..., warehouse="postgres")``,
created before it and dropped after it; each pytest-xdist worker is a process of its own, with
its own database name).

The seg_* files run on Postgres in tests/test_warehouse_parity.py, side by side with DuckDB and
compared table by table; this module runs every other file. One runs in the fast suite, every
file in ``make test`` (and in ``make test-warehouses``, with the seg_* files).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from journeys.explain import explain_journey
from nudge.core import reports
from nudge.core.dsl.load import parse_definitions
from nudge.core.segments.explain import explain_segment
from nudge.core.workspace import Workspace
from nudge.devtools.scenarios.model import Scenario, load_scenario
from nudge.devtools.scenarios.runner import run_scenario
from tests.conftest import postgres_marks, scenario_files

# A send policy with frequency caps; jrn_step_wait runs in the read-commands test below.
FAST = {"jrn_policy_frequency_cap_email"}


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(p, marks=postgres_marks(p.stem, FAST), id=p.stem)
        for p in scenario_files()
        if not p.stem.startswith("seg_")
    ],
)
@pytest.mark.usefixtures("postgres_server")
def test_scenario_on_postgres(path: Path, tmp_path: Path) -> None:
    result = run_scenario(load_scenario(path), tmp_path / "workspace", warehouse="postgres")
    assert result.runs > 0
    assert result.passed, "\n".join(str(f) for f in result.failures)


def _read_commands(home: Path, scenario: Scenario) -> dict[str, object]:
    """What the read commands (``segments``, ``profile``, ``explain``, the run summary) say
    after ``scenario`` ran in the workspace at ``home``."""
    workspace = Workspace(home=home, content_dir=scenario.path.parent)
    content, problems = parse_definitions(scenario.definitions, str(scenario.path))
    assert not problems
    profile = reports.user_profile(workspace, "u1")
    assert profile is not None
    for message in profile["messages"]:  # when the provider took it: the wall clock
        assert message.pop("completed_at") is not None
    return {
        "segments": reports.segment_sizes(workspace),
        "names": reports.segment_names(workspace),
        "members": reports.segment_members(workspace, "signed_up", limit=10, offset=0),
        "profile": profile,
        "summary": reports.run_summary(workspace),
        "explain segment": explain_segment(workspace, content, user_id="u1", segment="signed_up"),
        "explain journey": explain_journey(workspace, content, user_id="u1", journey="drip"),
    }


def test_read_commands_say_on_postgres_what_they_say_on_duckdb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_database: str
) -> None:
    scenario = load_scenario(Path(__file__).parent / "scenarios" / "jrn_step_wait.yml")
    assert run_scenario(scenario, tmp_path / "duckdb").passed
    on_duckdb = _read_commands(tmp_path / "duckdb", scenario)
    monkeypatch.setenv("NUDGE_WAREHOUSE", "postgres")
    monkeypatch.setenv("NUDGE_POSTGRES_URL", postgres_database)
    assert run_scenario(scenario, tmp_path / "postgres").passed
    assert not (tmp_path / "postgres" / "warehouse.duckdb").exists()
    on_postgres = _read_commands(tmp_path / "postgres", scenario)
    assert on_duckdb["members"].user_ids == ["u1"]
    for name, said in on_duckdb.items():
        assert on_postgres[name] == said, name
