"""The repo's dbt project on its own, as a dbt user opens it: `cd dbt_project && dbt parse`.

dbt runs as a real process in a copy of `dbt_project/`, with the profile committed there and no
NUDGE_WAREHOUSE_PATH (its default, a scratch warehouse under `target/`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from nudge.core.warehouse.dbt import committed_generated_files
from nudge.core.warehouse.schema import ensure_tables
from nudge.core.workspace import DBT_SOURCE_DIR

DBT = Path(sys.executable).with_name("dbt")
AS_OF = "2026-01-08T00:00:00"
REGENERATE = (
    "python -c 'from nudge.core.warehouse.dbt import write_committed_generated_files as w; w()'"
)


def _dbt(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"NUDGE_WAREHOUSE_PATH", "NUDGE_DBT_PROJECT", "DBT_PROFILES_DIR"}
    }
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    return subprocess.run(
        [str(DBT), *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _copy_of_repo_project(tmp_path: Path) -> Path:
    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_SOURCE_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    return project


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def test_committed_generated_files_are_what_the_generators_produce() -> None:
    for name, content in committed_generated_files(DBT_SOURCE_DIR).items():
        committed = DBT_SOURCE_DIR / name
        assert committed.is_file() and committed.read_bytes() == content, (
            f"{committed} is not what its generator produces now; regenerate it: {REGENERATE}"
        )


@pytest.mark.slow
def test_dbt_parse_of_the_repo_project_and_its_per_model_docs(tmp_path: Path) -> None:
    project = _copy_of_repo_project(tmp_path)
    parsed = _dbt(project, "parse")
    assert parsed.returncode == 0, parsed.stdout + parsed.stderr

    manifest = _read_json(project / "target" / "manifest.json")
    models = [node for node in manifest["nodes"].values() if node["resource_type"] == "model"]
    assert {"stg_events", "dim_users", "fct_events", "power_users"} <= {m["name"] for m in models}
    for model in models:
        model_file = Path(model["original_file_path"])
        assert model["patch_path"] == f"nudge://{model_file.with_suffix('.yml')}", model["name"]
        assert model["description"].strip(), model["name"]
        assert model["columns"], model["name"]
        undocumented = [name for name, c in model["columns"].items() if not c["description"]]
        assert not undocumented, (model["name"], undocumented)


@pytest.mark.slow
def test_dbt_build_and_docs_generate_in_the_repo_project(tmp_path: Path) -> None:
    project = _copy_of_repo_project(tmp_path)
    # The README's way to a warehouse with the sources: nudge's own DDL, then some events.
    warehouse = project / "target" / "warehouse.duckdb"
    warehouse.parent.mkdir()
    loaded_at = datetime(2026, 1, 8)
    with duckdb.connect(str(warehouse)) as con:
        ensure_tables(con)
        events = [("i1", "identify", None, '{"plan": "pro"}')] + [
            (f"t{n}", "track", "logged_in", None) for n in range(5)
        ]
        for message_id, kind, event, traits in events:
            con.execute(
                "insert into raw.events (message_id, type, user_id, event, timestamp, received_at,"
                " traits, landing_file, loaded_at) values (?, ?, 'u1', ?, ?, ?, ?, 'f1', ?)",
                [
                    message_id,
                    kind,
                    event,
                    datetime(2026, 1, 7),
                    datetime(2026, 1, 7),
                    traits,
                    loaded_at,
                ],
            )

    as_of = json.dumps({"as_of": AS_OF})
    built = _dbt(project, "build", "--vars", as_of)
    assert built.returncode == 0, built.stdout + built.stderr
    run = _read_json(project / "target" / "run_results.json")
    unit_tests = {
        r["unique_id"]: r["status"]
        for r in run["results"]
        if r["unique_id"].startswith("unit_test.")
    }
    assert len(unit_tests) >= 2 and set(unit_tests.values()) == {"pass"}, unit_tests
    with duckdb.connect(str(warehouse), read_only=True) as con:
        members = con.execute("select segment, user_id from marts.fct_segment_memberships")
        assert members.fetchall() == [("power_users", "u1")]
        assert con.execute("select user_id, plan from marts.dim_users").fetchall() == [
            ("u1", "pro")
        ]

    documented = _dbt(project, "docs", "generate", "--vars", as_of)
    assert documented.returncode == 0, documented.stdout + documented.stderr
    catalog = _read_json(project / "target" / "catalog.json")
    manifest = _read_json(project / "target" / "manifest.json")
    models = {uid: n for uid, n in manifest["nodes"].items() if n["resource_type"] == "model"}
    built_models = {uid for uid in models if models[uid]["config"]["materialized"] != "ephemeral"}
    assert built_models == set(catalog["nodes"])
    # Every column each model's table has is documented, and nothing else is.
    for unique_id, table in catalog["nodes"].items():
        assert {c.lower() for c in table["columns"]} == set(models[unique_id]["columns"]), unique_id
