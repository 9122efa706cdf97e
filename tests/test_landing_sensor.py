"""The landing sensor's first tick starts after the files earlier runs loaded, not before them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import dagster as dg
import pytest

from nudge.core.landing.loader import load_new_files
from nudge.core.landing.writer import land_messages
from nudge.core.warehouse.connection import connect

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow  # loading the code location prepares the dbt project

AT = datetime(2026, 3, 2, 9, 0)


def identify(user: str) -> list[dict]:
    traits = {"email": f"{user}@example.com"}
    return [
        {"type": "identify", "userId": user, "timestamp": AT.isoformat() + "Z", "traits": traits}
    ]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    from orchestration.location import load_location

    home = tmp_path / "home"
    monkeypatch.setenv("NUDGE_HOME", str(home))
    monkeypatch.setenv("NUDGE_CONTENT", str(REPO / "content"))
    monkeypatch.delenv("NUDGE_WAREHOUSE_PATH", raising=False)
    load_location.cache_clear()
    yield home
    load_location.cache_clear()


def test_first_tick_skips_files_a_run_loaded_and_later_files_start_runs(home: Path) -> None:
    from orchestration.defs.automation.sensors import new_landing_files

    landing = home / "landing" / "events"
    land_messages(landing, identify("ada"))
    loaded = land_messages(landing, identify("bob")).files[-1].name
    with connect(home / "warehouse.duckdb") as con:  # what a run's first stage does
        assert load_new_files(con, landing).files == 2

    with dg.DagsterInstance.ephemeral() as instance:
        first = new_landing_files(dg.build_sensor_context(instance=instance))
        assert isinstance(first, dg.SensorResult)
        assert not first.run_requests  # opening the UI starts no run for what was loaded
        assert first.cursor == loaded

        later = land_messages(landing, identify("cy")).files[-1].name
        context = dg.build_sensor_context(instance=instance, cursor=first.cursor)
        second = new_landing_files(context)
        assert [r.run_key for r in second.run_requests] == [later]
        assert second.cursor == later
