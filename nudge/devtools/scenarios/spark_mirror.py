"""A scenario run on DuckDB, mirrored step by step by dbt builds on Spark, and compared.

Built on ``nudge.devtools.scenarios.mirror`` (the comparison the Postgres side-by-side run uses
too): the same landing files, loaded into ``raw.events`` on Spark (``load_new_files_spark``), built at the same ``as_of`` values by dbt-spark's
``session`` method with the YAML segments compiled in the ``databricks`` dialect (Spark 4 reads
VARIANT with the same functions), must give the same users, events, segment memberships and
membership history as the DuckDB run. The journey engine and the senders run on DuckDB (they do
not run on Spark): before each build the mirror copies nudge's tables that dbt reads as sources
from DuckDB, as they stand when DuckDB's own build reads them.

One Spark session (one JVM) serves every scenario of a process: dbt's in-process invocations
find it and reuse it. The session catalog is in memory and nudge's schema names are fixed, so
scenarios run one after another, each starting from an empty catalog (``reset``).

pyspark and dbt-spark are the optional ``spark`` extra: importing this module needs neither,
``spark_session`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from nudge.core.landing.spark_loader import load_new_files_spark
from nudge.core.segments.dbt_models import generated_segment_models
from nudge.core.warehouse.connection import connect
from nudge.core.warehouse.dbt import DbtWorkspaceProject
from nudge.core.workspace import Workspace
from nudge.devtools.scenarios.mirror import Mirror, run_mirrored
from nudge.devtools.scenarios.model import Scenario
from nudge.devtools.scenarios.runner import ScenarioRun

# The tables of nudge's engine that the dbt project reads as sources (dbt_project's _sources.yml).
COPIED_TABLES = (
    "nudge.runs",
    "nudge.delivery_ledger",
    "nudge.journey_entries",
    "nudge.journey_transitions",
    "nudge.outbox",
)
# What dbt's profile sets on the session it starts (dbt_project/profiles.yml, output `spark`);
# the session started here must be the same, as dbt reuses it.
SESSION_SETTINGS = {
    "spark.sql.catalogImplementation": "in-memory",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.timestampType": "TIMESTAMP_NTZ",
    "spark.sql.mapKeyDedupPolicy": "LAST_WIN",
    "spark.sql.cteRecursionLevelLimit": "-1",
    "spark.sql.cteRecursionRowLimit": "-1",
    "spark.sql.ansi.enabled": "false",
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "1",
    "spark.sql.adaptive.enabled": "false",
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.parquet.compression.codec": "uncompressed",
    "spark.driver.extraJavaOptions": "-XX:+UseSerialGC",
    "spark.default.parallelism": "1",
    "spark.sql.leafNodeDefaultParallelism": "1",
    "spark.hadoop.mapreduce.fileoutputcommitter.algorithm.version": "2",
}


def spark_session(warehouse_dir: Path, driver_memory: str = "2g") -> Any:
    """The process's local Spark session, started with nudge's settings and tables under
    ``warehouse_dir`` (dbt's session method then reuses it)."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master("local[2]").appName("nudge-spark-mirror")
    settings = {
        **SESSION_SETTINGS,
        "spark.sql.warehouse.dir": str(warehouse_dir),
        "spark.driver.memory": driver_memory,
    }
    for name, value in settings.items():
        builder = builder.config(name, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def reset(spark: Any) -> None:
    """Drop every schema but ``default`` (with its tables and views): an empty catalog."""
    for row in spark.sql("show schemas").collect():
        if row[0] != "default":
            spark.sql(f"drop schema `{row[0]}` cascade")


def _spark_query(query: str, json_columns: tuple[str, ...]) -> str:
    """``query`` (``select a, b from t``) with its JSON columns read as JSON text."""
    selected = query[len("select ") : query.index(" from ")]
    columns = [
        f"to_json({name}) as {name}" if name in json_columns else name
        for name in (c.strip() for c in selected.split(","))
    ]
    return f"select {', '.join(columns)} {query[query.index(' from ') :]}"


class SparkMirror(Mirror):
    """The Spark side of one scenario: its own dbt project, building in ``spark``'s catalog."""

    label = "Spark"

    def __init__(self, run: ScenarioRun, home: Path, spark: Any) -> None:
        self.run = run
        self.spark = spark
        self.home = home
        self.builds = 0
        self.workspace = Workspace(home=home, content_dir=run.scenario.path.parent).ensure()
        self.project = DbtWorkspaceProject(
            self.workspace, source_dir=run.dbt_source, warehouse="spark"
        )
        reset(spark)
        self.assemble()

    def assemble(self) -> None:
        """(Re)write the project with the scenario's current segments compiled for Spark."""
        self.project.assemble(generated_segment_models(self.run.content, dialect="databricks"))
        self.project.manifest()

    def _copy_engine_tables(self) -> None:
        """nudge's source tables as DuckDB holds them now, each through a parquet file (JSON
        columns as text)."""
        folder = self.home / "copies" / str(self.builds)
        folder.mkdir(parents=True, exist_ok=True)
        with connect(self.run.workspace.warehouse_path, read_only=True) as con:
            for table in COPIED_TABLES:
                columns = [
                    f'cast("{row[0]}" as varchar) as "{row[0]}"'
                    if row[1] == "JSON"
                    else f'"{row[0]}"'
                    for row in con.execute(f"describe {table}").fetchall()
                ]
                target = folder / f"{table}.parquet"
                con.execute(
                    f"copy (select {', '.join(columns)} from {table}) to '{target}' (format parquet)"
                )
        self.spark.sql("create schema if not exists nudge")
        for table in COPIED_TABLES:
            self.spark.sql(f"drop table if exists {table}")
            self.spark.sql(
                f"create table {table} using parquet as"
                f" select * from parquet.`{folder / f'{table}.parquet'}`"
            )

    def build(self, as_of: datetime) -> None:
        """Load new landing files, copy the engine's tables, and build every model at as_of."""
        self.builds += 1
        load_new_files_spark(self.spark, self.run.workspace.events_landing_dir)
        self._copy_engine_tables()
        self.project.build(as_of)

    def rows(self, query: str, json_columns: tuple[str, ...]) -> tuple[list[str], list[Any]]:
        result = self.spark.sql(_spark_query(query, json_columns))
        return result.columns, [tuple(row) for row in result.collect()]


def run_mirrored_spark(
    scenario: Scenario,
    home: Path,
    spark: Any,
    progress: Callable[[str], None] | None = None,
) -> list[str]:
    """``run_mirrored`` with a ``SparkMirror`` building in ``spark``'s catalog."""
    return run_mirrored(
        scenario, home, lambda run: SparkMirror(run, home / "spark", spark), progress
    )
