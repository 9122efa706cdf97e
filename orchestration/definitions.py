"""The Dagster code location: one asset graph from the landing area to the reports on the ledger.

On DuckDB every asset that touches the file is in the ``duckdb`` pool, and the default executor
is in-process, so the single-writer file is never opened by two steps at once (DuckDB: one
writer); on a server warehouse the assets take no pool (``orchestration.run_context.
warehouse_pool``). The executor also lets one run at a time work in the workspace
(``orchestration.executor``).
"""

from __future__ import annotations

import dagster as dg

from orchestration.defs.automation.definitions import automation_definitions
from orchestration.defs.dbt.assets import dbt_definitions
from orchestration.defs.delivery.assets import delivery_definitions
from orchestration.defs.journeys.assets import journey_definitions
from orchestration.defs.landing.assets import landing_definitions
from orchestration.defs.stage_order import check_stage_order
from orchestration.executor import one_run_at_a_time_executor
from orchestration.resources import delivery_resources


def build_definitions() -> dg.Definitions:
    """The code location; raises ``StageOrderError`` when its graph breaks the stage order."""
    defs = dg.Definitions.merge(
        landing_definitions(),
        dbt_definitions(),
        journey_definitions(),
        delivery_definitions(),
        automation_definitions(),
        dg.Definitions(
            resources=delivery_resources(),
            executor=one_run_at_a_time_executor,
        ),
    )
    check_stage_order(defs)
    return defs


defs = build_definitions()
