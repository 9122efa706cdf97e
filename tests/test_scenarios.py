"""Every scenario file under tests/scenarios/ passes on DuckDB (docs/scenarios.md).

The fast suite runs every file here. ``make test`` runs the seg_* files on DuckDB side by side
with Postgres and Spark instead (tests/test_warehouse_parity.py), which holds the DuckDB run to
the same expectations: here they are marked ``duckdb_side_by_side`` and left out of it, so that
each file runs once on DuckDB there."""

from __future__ import annotations

from pathlib import Path

import pytest

from nudge.devtools.scenarios.model import load_scenario
from nudge.devtools.scenarios.runner import run_scenario
from tests.conftest import SCENARIO_DIR, SCENARIO_SUFFIXES, scenario_files

SCENARIOS = scenario_files()


def test_every_file_of_the_scenario_folder_is_run() -> None:
    """A file the suites would not pick up (another extension) fails here, not silently."""
    others = [p.name for p in SCENARIO_DIR.iterdir() if p.suffix not in SCENARIO_SUFFIXES]
    assert not others, f"not a scenario file ({', '.join(SCENARIO_SUFFIXES)}): {others}"
    assert "seg_sql_tagged_outside_segments" in {p.stem for p in SCENARIOS}


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(
            p,
            marks=[pytest.mark.duckdb_side_by_side] if p.stem.startswith("seg_") else [],
            id=p.stem,
        )
        for p in SCENARIOS
    ],
)
def test_scenario(path: Path, tmp_path: Path) -> None:
    result = run_scenario(load_scenario(path), tmp_path / "workspace")
    assert result.runs > 0
    assert result.passed, "\n".join(str(f) for f in result.failures)
