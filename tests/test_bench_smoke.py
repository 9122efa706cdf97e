"""`nudge bench --scale small` end to end: every stage produces a result (times are not checked).

The last stage starts `dagster dev` on the bench workspace and times one landed event to its
email with the sensor running."""

from __future__ import annotations

import json

import pytest

from nudge.cli.main import main

STAGES = {
    "load",
    "dbt_build",
    "segments",
    "eligibility_diff",
    "journeys",
    "send",
    "reports",
    "full_run_excluding_send",
    "landing",
    "incremental_load",
    "incremental_dbt_build",
    "incremental_segments",
    "incremental_eligibility_diff",
    "incremental_journeys",
    "incremental_send",
    "incremental_reports",
    "incremental_run_excluding_send",
    "collector_single",
    "collector_batch",
    "collector_at_1000",
    "http_send",
    "latency",
}
NO_FLOOR = {"latency"}  # nothing cheaper does the same end to end (nudge/devtools/bench/latency.py)


@pytest.mark.slow
def test_small_bench_writes_every_stage(tmp_path, capsys):
    results_path = tmp_path / "results.json"
    status = main(
        [
            "bench",
            "--scale",
            "small",
            "--work-dir",
            str(tmp_path / "work"),
            "--results",
            str(results_path),
        ]
    )
    assert status == 0
    results = json.loads(results_path.read_text())
    assert results["scale"] == "small"
    assert set(results["stages"]) == STAGES
    for name, stage in results["stages"].items():
        assert stage["seconds"] > 0, name
        assert set(stage) >= {"seconds", "floor_seconds", "ratio", "peak_rss_mb", "rows"}, name
        if name not in NO_FLOOR:
            assert stage["floor_seconds"] is not None and stage["floor_seconds"] > 0, name
    assert results["stages"]["send"]["rows"] > 0  # real email reached the SMTP server
    assert results["stages"]["http_send"]["rows"] == 3_000  # every message reached the server
    assert results["stages"]["journeys"]["rows"] > 0
    # One event, landed with the sensor running, reached the SMTP server through a Dagster run
    # at the wall-clock as_of, after the sensor's catch-up run over the bench's files succeeded.
    assert results["stages"]["latency"]["rows"] == 1
    assert results["stages"]["latency"]["floor_seconds"] is None
    latency = results["info"]["latency"]
    assert latency["run_id"] and latency["catch_up_run_seconds"] is not None
    assert set(latency["seconds_after_landing"]) == {"sensor_tick", "run_start", "email", "run_end"}
    assert not (tmp_path / "work").exists()  # the scratch workspace is removed
    assert "| dbt_build |" in capsys.readouterr().out
