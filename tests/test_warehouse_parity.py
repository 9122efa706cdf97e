"""Each seg_* scenario of tests/scenarios/ on DuckDB and on PostgreSQL side by side, and on Spark
too (nudge.devtools.scenarios.side_by_side): the whole pipeline (load, dbt, journeys, sending) on
DuckDB and Postgres, each held to the file's expectations, and the DuckDB runs mirrored by dbt
builds on Spark; after each run dim_users, fct_events, the memberships and the membership history
must be the same on all of them, and the messages sent the same on DuckDB and Postgres.

This is the Postgres and Spark run of the seg_* files: tests/test_scenarios_postgres.py runs the
others on Postgres, and tests/test_scenarios.py runs every file on DuckDB alone. Two run in the
fast suite (on DuckDB and Postgres). ``make test`` runs every file, mirroring one of each family
on Spark (``NUDGE_TEST_SPARK=families``: a Spark build of every file would add about 20 minutes
to it, docs/warehouses.md); ``make test-spark-others`` mirrors the other files on Spark, beside
DuckDB only (``NUDGE_TEST_SPARK=others``, run by .ci/run after ``make test`` when time allows);
``make test-warehouses`` mirrors every file beside DuckDB and Postgres (``NUDGE_TEST_SPARK=1``).

pyspark and dbt-spark are the ``spark`` extra (about 400 MB, out of the default install): both
targets install it. With the variable set, a missing extra or Java fails the module; without
it, Spark is left out.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nudge.devtools.scenarios.model import load_scenario
from nudge.devtools.scenarios.side_by_side import run_side_by_side
from tests.conftest import postgres_marks, scenario_files

SCENARIOS = scenario_files("seg_")
# Deletes, re-created profiles and several runs; typed traits. The rest are slow.
FAST = {"seg_delete_user", "seg_attr_eq_typed"}
# Mirrored on Spark in make test: one of each family (as chosen for the Postgres runs when make
# test ran one of each there, the cheaper file of a family where there are several), and the two
# of the fast suite (deletes; typed traits, which Spark keeps as decimals). Three families that
# took 2 to 4 minutes each on Spark in make test (suppression, messages sent, a late trait update)
# are mirrored by make test-spark-others with the rest, to keep make test within CI's time.
SPARK_FAMILIES = {
    "seg_anonymous_merge_identify",
    "seg_merge_customers",
    "seg_attr_eq_typed",
    "seg_attr_gt_timestamp_operand",
    "seg_attr_contains_array",
    "seg_attr_within_next",
    "seg_delete_user",
    "seg_performed_times_operators",
    "seg_performed_window_boundaries",
    "seg_logic_nested",
    "seg_random_bucket_bounds",
    "seg_subscription_topic_defaults",
    "seg_where_timestamp_ops",
    "seg_sql_tagged_outside_segments",
    "seg_in_segment_chain",
}
# The files make test does not mirror on Spark: make test-spark-others mirrors them.
SPARK_OTHERS = [p for p in SCENARIOS if p.stem not in SPARK_FAMILIES]
# NUDGE_TEST_SPARK: every file on Spark (beside Postgres), one of each family, or the others
# (beside DuckDB only: make test ran them on Postgres).
SPARK_CHOICES = {"1", "families", "others"}
# Scenarios whose dbt build does not run on Spark yet: what the build says instead, and why
# (docs/warehouses.md, Spark).
SPARK_REFUSES = {
    # A segment model outside the segments schema needs an alias view marked with a comment,
    # which Spark's session catalog cannot be asked for.
    "seg_sql_tagged_outside_segments": "lives outside the segments schema, which nudge cannot alias",
}


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """This process's Spark session when ``NUDGE_TEST_SPARK`` is set, else ``None``."""
    choice = os.environ.get("NUDGE_TEST_SPARK")
    if not choice:
        yield None
        return
    if choice not in SPARK_CHOICES:
        pytest.fail(
            f"NUDGE_TEST_SPARK={choice}: set it to 1 (every file on Spark), families (one of "
            "each family) or others (the files families leaves out, on Spark only), or leave it "
            "unset (no Spark)."
        )
    missing = [
        what
        for what, found in (
            ("pyspark", importlib.util.find_spec("pyspark") is not None),
            ("dbt-spark", importlib.util.find_spec("dbt.adapters.spark") is not None),
            ("java (Java 17)", shutil.which("java") is not None),
        )
        if not found
    ]
    if missing:
        pytest.fail(
            f"NUDGE_TEST_SPARK is set but {', '.join(missing)} is missing: `make test-warehouses` installs "
            "the spark extra; Java 17 comes from the system's packages."
        )
    from nudge.devtools.scenarios.spark_mirror import spark_session

    session = spark_session(tmp_path_factory.mktemp("spark-warehouse"))
    yield session
    session.stop()


@pytest.mark.skipif(
    os.environ.get("NUDGE_TEST_SPARK") == "others",
    reason="NUDGE_TEST_SPARK=others mirrors on Spark only: make test ran the side-by-side runs",
)
@pytest.mark.parametrize(
    "path", [pytest.param(p, marks=postgres_marks(p.stem, FAST), id=p.stem) for p in SCENARIOS]
)
@pytest.mark.usefixtures("postgres_server")
def test_warehouses_match_duckdb(path: Path, tmp_path: Path, spark: Any) -> None:
    scenario = load_scenario(path)
    if os.environ.get("NUDGE_TEST_SPARK") == "families" and path.stem not in SPARK_FAMILIES:
        spark = None
    refusal = SPARK_REFUSES.get(path.stem)
    problems = run_side_by_side(
        scenario, tmp_path / "side-by-side", spark=None if refusal else spark
    )
    assert not problems, "\n".join(problems)
    if refusal is not None and spark is not None:
        from nudge.core.warehouse.dbt import DbtBuildError
        from nudge.devtools.scenarios.spark_mirror import run_mirrored_spark

        with pytest.raises(DbtBuildError, match=refusal):
            run_mirrored_spark(scenario, tmp_path / "spark", spark)


@pytest.mark.skipif(
    os.environ.get("NUDGE_TEST_SPARK") != "others",
    reason="make test-spark-others mirrors these on Spark (NUDGE_TEST_SPARK=others)",
)
@pytest.mark.slow
@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem) for p in SPARK_OTHERS])
def test_spark_mirrors_duckdb(path: Path, tmp_path: Path, spark: Any) -> None:
    """A seg_* file make test leaves off Spark: run on DuckDB, each run mirrored by a Spark
    build, the same users, events, memberships and history after every run."""
    from nudge.devtools.scenarios.spark_mirror import run_mirrored_spark

    problems = run_mirrored_spark(load_scenario(path), tmp_path, spark)
    assert not problems, "\n".join(problems)


def test_every_spark_family_is_a_seg_file() -> None:
    """A renamed or removed file would silently leave its family off Spark in make test, and a
    file Spark refuses must be one whose refusal make test checks."""
    missing = SPARK_FAMILIES - {p.stem for p in SCENARIOS}
    assert not missing, f"not seg_* files of tests/scenarios/: {sorted(missing)}"
    unchecked = set(SPARK_REFUSES) - SPARK_FAMILIES
    assert not unchecked, f"refused on Spark but not in SPARK_FAMILIES: {sorted(unchecked)}"
