"""A segment that reads the delivery ledger (a `message` condition) still loads as one graph.

The segment reads the ledger as earlier runs left it; drawn as an edge, that read would close a
cycle (segments -> journeys -> outbox -> email -> ledger) and the code location would not load.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestration.asset_keys import LEDGER, model_key, segment_key

pytestmark = pytest.mark.slow

CONTENT = """
segments:
  - name: emailed_this_week
    condition: {message: {status: sent, channel: email, within: 7d}}
templates:
  - {name: ping, channel: email, subject: "Hi", html: "<p>Hi</p>"}
journeys:
  - name: after_email
    trigger: {segment_entered: emailed_this_week}
    steps:
      - {id: ping, send: {channel: email, template: ping}}
"""


@pytest.fixture
def ledger_reading_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from orchestration.location import load_location

    content = tmp_path / "content"
    content.mkdir()
    (content / "definitions.yml").write_text(CONTENT)
    home = tmp_path / "home"
    monkeypatch.setenv("NUDGE_HOME", str(home))
    monkeypatch.setenv("NUDGE_CONTENT", str(content))
    monkeypatch.setenv("NUDGE_WAREHOUSE_PATH", str(home / "warehouse.duckdb"))
    load_location.cache_clear()
    yield
    load_location.cache_clear()


def test_segment_reading_the_ledger_loads_without_a_cycle(ledger_reading_workspace: None) -> None:
    from orchestration.definitions import build_definitions

    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    defs.resolve_job_def("nudge_pipeline")  # raises on a cycle

    segment = graph.get(segment_key("emailed_this_week"))
    assert LEDGER not in segment.parent_keys
    report = graph.get(model_key("reports", "rpt_messages_by_journey_step"))
    assert LEDGER in report.parent_keys
