"""Copy new landing files into ``raw.events`` on Spark (what the dbt project reads there).

The same contract as the DuckDB and Postgres loaders: ``raw.loaded_files`` remembers every file
already copied and only the others are read. The parquet files are normalised to the landing
columns by pyarrow (as for Postgres), written as one parquet file beside the landing area, and
inserted with one statement that parses the JSON text columns into VARIANT (the type the dbt
project's Spark macros read). Spark's plain parquet tables have no transactions: the files are
recorded after their rows are in, so a load that fails between the two statements loads those
files again (their copies are then dropped by ``stg_events``, which keeps one row per message).

``spark`` is a ``pyspark.sql.SparkSession`` (pyspark is the optional ``spark`` extra; nothing
here imports it).
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from nudge.core.landing.loader import LoadResult, landing_files
from nudge.core.landing.postgres_loader import landing_columns, tagged_rows

JSON_COLUMNS = ("properties", "traits", "context")

SPARK_RAW_TABLES = (
    "create schema if not exists raw",
    """create table if not exists raw.events (
        message_id string not null, type string not null, user_id string, anonymous_id string,
        previous_id string, group_id string, event string, name string,
        timestamp timestamp_ntz, received_at timestamp_ntz,
        properties variant, traits variant, context variant,
        landing_file string, loaded_at timestamp_ntz
    ) using parquet""",
    """create table if not exists raw.loaded_files (
        file_name string not null, rows bigint not null, loaded_at timestamp_ntz not null
    ) using parquet""",
)


def _quoted(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def load_new_files_spark(spark: Any, landing_dir: Path) -> LoadResult:
    """Copy every parquet file under ``landing_dir`` not yet in ``raw.loaded_files``."""
    for statement in SPARK_RAW_TABLES:
        spark.sql(statement)
    found = landing_files(landing_dir.resolve())
    loaded = {row[0] for row in spark.sql("select file_name from raw.loaded_files").collect()}
    new = {name: path for name, path in found.items() if name not in loaded}
    if not new:
        return LoadResult(files=0, rows=0)
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    rows, counts = tagged_rows(new, lambda path: landing_columns(pq.read_table(path)))
    columns = [
        f"parse_json({name}) as {name}" if name in JSON_COLUMNS else name
        for name in rows.column_names
    ]
    stamp = f"cast('{loaded_at.isoformat(sep=' ')}' as timestamp_ntz)"
    with tempfile.TemporaryDirectory(prefix="nudge-spark-load-") as scratch:
        staged = Path(scratch) / "landing.parquet"
        pq.write_table(rows, staged)
        spark.sql(
            f"insert into raw.events select {', '.join(columns)}, {stamp} as loaded_at"
            f" from parquet.`{staged}`"
        )
    values = ", ".join(f"({_quoted(name)}, {count}, {stamp})" for name, count in counts)
    spark.sql(f"insert into raw.loaded_files values {values}")
    return LoadResult(files=len(new), rows=rows.num_rows)
