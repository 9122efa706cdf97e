"""`nudge bench --warehouse postgres` end to end at the tiny scale: every pipeline stage runs on a
database of its own on the local PostgreSQL server and has a floor run there (times are not
checked), the stages that never touch the warehouse are skipped with a reason, and the database
is gone afterwards."""

from __future__ import annotations

import json

import pytest

from nudge.cli.main import main
from nudge.core.warehouse.postgres import connect_postgres
from nudge.core.warehouse.settings import PostgresUnreachable
from tests.conftest import SERVER
from tests.test_bench_smoke import STAGES

# Every stage of the DuckDB bench but those that never touch the warehouse.
PIPELINE_STAGES = STAGES - {"collector_single", "collector_batch", "collector_at_1000", "http_send",
                            "latency"}  # fmt: skip


def _databases() -> set[str]:
    with connect_postgres(SERVER) as con, con.cursor() as cursor:
        cursor.execute("select datname from pg_database")
        return {name for (name,) in cursor.fetchall()}


@pytest.mark.slow  # 50-100 s: a whole bench run on a fresh database
def test_tiny_bench_on_postgres(tmp_path, monkeypatch, capsys):
    try:
        before = _databases()
    except PostgresUnreachable as error:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 is not reachable: {error}")
    monkeypatch.delenv("NUDGE_WAREHOUSE", raising=False)
    monkeypatch.setenv("NUDGE_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/nudge")
    results_path = tmp_path / "results.json"
    work = tmp_path / "work"
    status = main(
        ["bench", "--scale", "tiny", "--warehouse", "postgres", "--keep",
         "--work-dir", str(work), "--results", str(results_path)]
    )  # fmt: skip
    assert status == 0
    results = json.loads(results_path.read_text())
    assert results["warehouse"] == "postgres"
    assert set(results["stages"]) == PIPELINE_STAGES
    for name, stage in results["stages"].items():
        assert stage["floor_seconds"] is not None and stage["floor_seconds"] > 0, name
        assert stage["ratio"] is not None, name
    assert results["stages"]["journeys"]["rows"] > 0
    assert results["stages"]["send"]["rows"] > 0  # real email reached the SMTP server
    assert set(results["info"]["skipped"]) == {"collector", "http_send", "latency"}
    out = capsys.readouterr().out
    assert "collector: skipped on postgres" in out
    # Everything ran in a database of its own, dropped afterwards; no DuckDB file was written.
    database = results["info"]["postgres_database"]
    assert database.startswith("nudge_bench_") and database not in before
    assert database not in _databases()
    assert not (work / "workspace" / "warehouse.duckdb").exists()
