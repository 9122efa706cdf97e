"""The warehouse setting: one variable, checked, and followed by dbt's profile."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from nudge.core.warehouse.connection import connect
from nudge.core.warehouse.schema import ensure_tables
from nudge.core.warehouse.settings import (
    WarehouseSettingError,
    postgres_address,
    sql_dialect,
    warehouse,
)


def test_duckdb_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NUDGE_WAREHOUSE", raising=False)
    assert warehouse() == "duckdb"
    assert sql_dialect() == "duckdb"
    monkeypatch.setenv("NUDGE_WAREHOUSE", " Postgres ")
    assert warehouse() == "postgres"
    assert sql_dialect() == "postgres"


def test_an_unknown_warehouse_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUDGE_WAREHOUSE", "oracle")
    with pytest.raises(WarehouseSettingError, match=r"NUDGE_WAREHOUSE='oracle'.*duckdb, postgres"):
        warehouse()


def test_postgres_url_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NUDGE_POSTGRES_URL", raising=False)
    default = postgres_address()
    assert (default.host, default.port, default.user, default.dbname) == (
        "127.0.0.1",
        5432,
        "postgres",
        "nudge",
    )
    assert default.password is None
    given = postgres_address("postgresql://ana:p%40ss@db.internal:6543/marts")
    assert given.connect_kwargs() == {
        "host": "db.internal",
        "port": 6543,
        "user": "ana",
        "dbname": "marts",
        "password": "p@ss",
    }


def test_a_bad_url_is_refused_without_its_password() -> None:
    with pytest.raises(WarehouseSettingError) as raised:
        postgres_address("mysql://ana:secret@db/marts")
    assert "secret" not in str(raised.value)
    assert "postgresql://user[:password]@host[:port]/database" in str(raised.value)


def test_the_workspace_warehouse_follows_the_setting_and_leaves_no_duckdb_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, postgres_database: str
) -> None:
    monkeypatch.setenv("NUDGE_WAREHOUSE", "postgres")
    monkeypatch.setenv("NUDGE_POSTGRES_URL", postgres_database)
    with connect(tmp_path / "warehouse.duckdb") as con:
        ensure_tables(con)
        con.execute(
            "insert or replace into nudge.runs values (?, ?, ?, null, 'running')",
            ["r1", datetime(2026, 1, 1), datetime(2026, 1, 1)],
        )
        con.execute(
            "insert or replace into nudge.runs values (?, ?, ?, null, 'succeeded')",
            ["r1", datetime(2026, 1, 1), datetime(2026, 1, 2)],
        )
    with connect(tmp_path / "warehouse.duckdb", read_only=True) as con:
        assert con.execute("select run_id, status from nudge.runs").fetchall() == [
            ("r1", "succeeded")
        ]
        with pytest.raises(duckdb.CatalogException, match=r"marts\.dim_users"):
            con.execute("select * from marts.dim_users")
    assert not (tmp_path / "warehouse.duckdb").exists()


def _dbt_debug(project: Path, logs: Path) -> bool:
    from dbt.cli.main import dbtRunner

    args = ["debug", "--project-dir", str(project), "--profiles-dir", str(project)]
    return dbtRunner().invoke([*args, "--log-path", str(logs)]).success


def test_dbt_profile_connects_where_the_setting_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_database: str
) -> None:
    """dbt renders profiles.yml with NUDGE_WAREHOUSE and NUDGE_POSTGRES_URL (dbt debug connects)."""
    project = Path(__file__).resolve().parents[1] / "dbt_project"
    monkeypatch.setenv("NUDGE_WAREHOUSE", "postgres")
    monkeypatch.setenv("NUDGE_POSTGRES_URL", postgres_database)
    assert _dbt_debug(project, tmp_path)
    monkeypatch.setenv("NUDGE_POSTGRES_URL", postgres_database + "_missing")
    assert not _dbt_debug(project, tmp_path)


def test_spark_builds_the_dbt_project_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NUDGE_WAREHOUSE", "spark")
    assert warehouse() == "spark"
    # Spark 4 reads VARIANT documents with Databricks's functions.
    assert sql_dialect() == "databricks"
    with (
        pytest.raises(WarehouseSettingError, match=r"only the dbt project builds on spark"),
        connect(tmp_path / "warehouse.duckdb"),
    ):
        pass
    assert not (tmp_path / "warehouse.duckdb").exists()


def test_the_spark_mirror_starts_the_session_dbt_would() -> None:
    """dbt reuses a session already started in the process: the mirror's must carry the
    settings of the profile's spark output (static ones only apply at start)."""
    import yaml

    from nudge.devtools.scenarios.spark_mirror import SESSION_SETTINGS

    profile = yaml.safe_load((Path(__file__).parents[1] / "dbt_project/profiles.yml").read_text())
    spark = profile["nudge"]["outputs"]["spark"]
    assert (spark["type"], spark["method"]) == ("spark", "session")
    configured = {
        name: str(value)
        for name, value in spark["server_side_parameters"].items()
        if "{{" not in str(value)
    }
    # dbt-spark adds spark.sql.ansi.enabled=false itself.
    assert configured == {
        k: v for k, v in SESSION_SETTINGS.items() if k != "spark.sql.ansi.enabled"
    }
