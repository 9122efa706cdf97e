"""Every scenario file under tests/scenarios/ passes on DuckDB (docs/scenarios.md), in the fast
suite and in ``make test``."""

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


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario(path: Path, tmp_path: Path) -> None:
    result = run_scenario(load_scenario(path), tmp_path / "workspace")
    assert result.runs > 0
    assert result.passed, "\n".join(str(f) for f in result.failures)
