"""SQL segments are every dbt model tagged `segment`, wherever it lives (issue 3).

A copy of the repo's dbt project gets two models under models/marts/: `vip_customers` tagged in
its config() and `germans` tagged by a properties file. Everything runs for real: dbt parses and
builds a DuckDB file, the scenario runner runs the pipeline stages, the CLI runs as a process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from nudge.core.warehouse.connection import connect
from nudge.core.warehouse.dbt import (
    DbtBuildError,
    DbtWorkspaceProject,
    copy_dbt_project,
    sql_segment_models,
)
from nudge.core.warehouse.schema import ensure_tables
from nudge.core.workspace import Workspace
from nudge.devtools.scenarios.model import ScenarioFormatError, load_scenario
from nudge.devtools.scenarios.runner import run_scenario
from orchestration.asset_keys import journey_key, model_key, segment_key

SCENARIO = Path(__file__).parent / "scenarios" / "seg_sql_tagged_outside_segments.yml"
VIP = "{{ config(tags=['segment']) }}\nselect user_id from {{ ref('dim_users') }} where plan = 'vip'\n"
GERMANS = "select user_id from {{ ref('dim_users') }} where country = 'DE'\n"
GERMANS_TAG = "version: 2\nmodels:\n  - name: germans\n    config: {tags: [segment]}\n"
SCENARIO_START = load_scenario(SCENARIO).start
JOURNEY = """
templates:
  - {name: hi, channel: email, subject: "Hi", html: "<p>Hi</p>"}
journeys:
  - name: vip_welcome
    trigger: {segment_entered: vip_customers}
    entry_filter: {in_segment: germans}
    steps: [{id: hello, send: {channel: email, template: hi}}]
"""


@pytest.fixture(scope="module")
def tagged_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = copy_dbt_project(tmp_path_factory.mktemp("tagged") / "dbt_project")
    (source / "models/marts/vip_customers.sql").write_text(VIP)
    (source / "models/marts/germans.sql").write_text(GERMANS)
    (source / "models/marts/_tagged_segments.yml").write_text(GERMANS_TAG)
    return source


def test_every_tagged_model_is_a_sql_segment(tagged_source: Path) -> None:
    assert sql_segment_models(tagged_source) == {
        "germans": tagged_source / "models/marts/germans.sql",
        "power_users": tagged_source / "models/segments/power_users.sql",
        "vip_customers": tagged_source / "models/marts/vip_customers.sql",
    }


def test_union_depends_on_every_tagged_model(tagged_source: Path, tmp_path: Path) -> None:
    workspace = Workspace(home=tmp_path, content_dir=tmp_path / "content").ensure()
    project = DbtWorkspaceProject(workspace, source_dir=tagged_source)
    project.assemble({"pro_plan": "select user_id from {{ ref('vip_customers') }}"})
    union = project.manifest().nodes["model.nudge.fct_segment_memberships"]
    assert set(union.depends_on.nodes) == {
        "model.nudge.germans",
        "model.nudge.power_users",
        "model.nudge.pro_plan",
        "model.nudge.vip_customers",
    }


def test_a_union_missing_a_tagged_model_is_refused(tagged_source: Path, tmp_path: Path) -> None:
    workspace = Workspace(home=tmp_path, content_dir=tmp_path / "content").ensure()
    with connect(workspace.warehouse_path) as con:
        ensure_tables(con)
    project = DbtWorkspaceProject(workspace, source_dir=tagged_source)
    project.assemble({})
    union = project.project_dir / "models/marts/fct_segment_memberships.sql"
    union.write_text(union.read_text().replace("'germans', ", ""))
    with pytest.raises(DbtBuildError, match="models tagged `segment` are"):
        project.build(SCENARIO_START, select="+fct_segment_memberships")


def build_with_model(tmp_path: Path, model_sql: str) -> DbtBuildError:
    """Build a project whose source has `models/marts/bad_segment.sql`; return the build error."""
    source = copy_dbt_project(tmp_path / "dbt_project")
    (source / "models/marts/bad_segment.sql").write_text(model_sql)
    workspace = Workspace(home=tmp_path / "home", content_dir=tmp_path / "content").ensure()
    with connect(workspace.warehouse_path) as con:
        ensure_tables(con)
    project = DbtWorkspaceProject(workspace, source_dir=source)
    project.assemble({})
    with pytest.raises(DbtBuildError) as raised:
        project.build(SCENARIO_START, exclude="tag:delivery_reports")
    return raised.value


def test_contract_checks_tagged_models_outside_segments(tmp_path: Path) -> None:
    error = build_with_model(
        tmp_path,
        "{{ config(tags=['segment']) }}\n"
        "select 'u1' as user_id union all select 'u1' union all select null",
    )
    assert [node for node, _ in error.failures] == ["test.nudge.segment_models_contract"]


def test_a_tagged_model_without_user_id_is_named(tmp_path: Path) -> None:
    error = build_with_model(tmp_path, "{{ config(tags=['segment']) }}\nselect 'u1' as uid")
    assert "segment model bad_segment (models/marts/bad_segment.sql) has no user_id column" in str(
        error
    )


@pytest.fixture(scope="module")
def scenario_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("scenario") / "workspace"
    result = run_scenario(load_scenario(SCENARIO), home)
    assert result.runs == 2
    assert result.passed, "\n".join(str(f) for f in result.failures)
    return home


def rows(home: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_scenario_memberships_trigger_and_in_segment(scenario_home: Path) -> None:
    # The expectations (memberships, the journey's send, in_segment in YAML and in the entry
    # filter) are the scenario's own; here, what it left in the warehouse.
    assert rows(scenario_home, "select count(*) from nudge.journey_entries") == [(2,)]


def test_tagged_models_have_history_and_definitions(scenario_home: Path) -> None:
    history = rows(
        scenario_home,
        "select user_id, entered_at is not null, exited_at is not null, exit_reason "
        "from marts.fct_segment_membership_history where segment = 'vip_customers' order by 1",
    )
    assert history == [
        ("u1", True, True, "left"),
        ("u2", True, False, None),
        ("u3", True, False, None),
    ]
    kinds = rows(
        scenario_home,
        "select segment, kind from marts.fct_segment_definitions "
        "where segment in ('vip_customers', 'germans') order by 1",
    )
    assert kinds == [("germans", "sql"), ("vip_customers", "sql")]


def test_engine_reads_tagged_models_as_segments_relations(scenario_home: Path) -> None:
    assert rows(scenario_home, 'select user_id from segments."vip_customers" order by 1') == [
        ("u2",),
        ("u3",),
    ]
    assert rows(scenario_home, "select count(*) from marts.vip_customers") == [(2,)]


def test_scenario_may_not_replace_a_project_file(tmp_path: Path) -> None:
    text = SCENARIO.read_text().replace("models/marts/germans.sql", "models/marts/dim_users.sql")
    path = tmp_path / "replaces.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioFormatError, match="does not replace"):
        run_scenario(load_scenario(path), tmp_path / "workspace")


def nudge_validate(
    tagged_source: Path, tmp_path: Path, definitions: str
) -> subprocess.CompletedProcess:
    content = tmp_path / "content"
    content.mkdir(exist_ok=True)
    (content / "segments.yml").write_text(definitions)
    env = {
        **os.environ,
        "NUDGE_HOME": str(tmp_path / "home"),
        "NUDGE_CONTENT": str(content),
        "NUDGE_DBT_PROJECT": str(tagged_source),
    }
    return subprocess.run(
        [sys.executable, "-m", "nudge.cli", "validate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_validate_knows_tagged_names_and_suggests_them(tagged_source: Path, tmp_path: Path) -> None:
    ok = nudge_validate(
        tagged_source,
        tmp_path,
        "segments:\n  - {name: vip_de, condition: {all: [{in_segment: vip_customers}, {in_segment: germans}]}}\n",
    )
    assert ok.returncode == 0, ok.stderr
    typo = nudge_validate(
        tagged_source,
        tmp_path,
        "segments:\n  - {name: vip_de, condition: {in_segment: vip_customer}}\n",
    )
    assert typo.returncode == 2
    assert "unknown segment 'vip_customer'" in typo.stderr
    assert "did you mean 'vip_customers'?" in typo.stderr


def test_validate_refuses_a_yaml_segment_named_like_a_tagged_model(
    tagged_source: Path, tmp_path: Path
) -> None:
    clash = nudge_validate(
        tagged_source,
        tmp_path,
        "segments:\n  - {name: germans, condition: {attribute: {name: country, eq: DE}}}\n",
    )
    assert clash.returncode == 2
    assert str(tmp_path / "content" / "segments.yml") in clash.stderr
    assert str(tagged_source / "models/marts/germans.sql") in clash.stderr


def test_dagster_keys_tagged_models_as_segments(
    tagged_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestration.definitions import build_definitions
    from orchestration.location import load_location

    content = tmp_path / "content"
    content.mkdir()
    (content / "defs.yml").write_text(JOURNEY)
    for name, value in {
        "NUDGE_HOME": str(tmp_path / "home"),
        "NUDGE_CONTENT": str(content),
        "NUDGE_DBT_PROJECT": str(tagged_source),
    }.items():
        monkeypatch.setenv(name, value)
    load_location.cache_clear()
    try:
        graph = build_definitions().resolve_asset_graph()
    finally:
        load_location.cache_clear()
    vip, germans = segment_key("vip_customers"), segment_key("germans")
    assert graph.get(vip).group_name == "segments"
    assert graph.get(germans).group_name == "segments"
    assert not graph.has(model_key("marts", "vip_customers"))
    journey = graph.get(journey_key("vip_welcome"))
    assert {vip, germans} <= set(journey.parent_keys)
    memberships = graph.get(model_key("marts", "fct_segment_memberships"))
    assert {vip, germans} <= set(memberships.parent_keys)


def test_contract_checks_what_an_incremental_build_wrote(tmp_path: Path) -> None:
    """A segment built incrementally is checked only for the users its build wrote (the increment
    it keeps): a build that appends a member again is still caught."""
    source = copy_dbt_project(tmp_path / "dbt_project")
    (source / "models/marts/appended.sql").write_text(
        "{{ config(tags=['segment'], materialized='incremental', "
        "incremental_strategy='append', keep_increment=true) }}\nselect 'u1' as user_id\n"
    )
    workspace = Workspace(home=tmp_path / "home", content_dir=tmp_path / "content").ensure()
    with connect(workspace.warehouse_path) as con:
        ensure_tables(con)
    project = DbtWorkspaceProject(workspace, source_dir=source)
    project.assemble({})
    project.build(SCENARIO_START, exclude="tag:delivery_reports")  # first build: one row
    with pytest.raises(DbtBuildError) as raised:
        project.build(SCENARIO_START, exclude="tag:delivery_reports")
    assert [node for node, _ in raised.value.failures] == ["test.nudge.segment_models_contract"]
