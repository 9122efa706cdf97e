"""Every scenario file under tests/scenarios/ passes (docs/scenarios.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nudge.devtools.scenarios.model import load_scenario
from nudge.devtools.scenarios.runner import run_scenario

SCENARIOS = sorted((Path(__file__).parent / "scenarios").glob("*.yml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario(path: Path, tmp_path: Path) -> None:
    result = run_scenario(load_scenario(path), tmp_path / "workspace")
    assert result.runs > 0
    assert result.passed, "\n".join(str(f) for f in result.failures)
