"""What every step of a Dagster run shares: the instant it works at, and the pool its
warehouse steps take."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from nudge.core.clock import to_utc_naive
from nudge.core.warehouse.settings import warehouse

AS_OF_TAG = "nudge/as_of"
# A run so tagged rebuilds every dbt model from scratch (`nudge run --full-refresh`, or the tag
# added to a run launched from the UI).
FULL_REFRESH_TAG = "nudge/full_refresh"
FULL_REFRESH_TAGS = {FULL_REFRESH_TAG: "true"}
DUCKDB_POOL = "duckdb"


def warehouse_pool() -> str | None:
    """The Dagster pool of every asset that opens the warehouse, for the warehouse configured
    when the definitions are built: ``duckdb`` (limit one in the instance, ``orchestration.
    instance``: one writer of the file at a time), or none on a server warehouse, where steps
    the graph leaves independent (the journeys, one sender per channel) run at once."""
    return DUCKDB_POOL if warehouse() == "duckdb" else None


def as_of_for(context: dg.AssetExecutionContext) -> datetime:
    """``nudge/as_of`` from the run's tags, else the run's creation time (same for every step)."""
    tagged = context.run.tags.get(AS_OF_TAG)
    if tagged:
        moment = datetime.fromisoformat(tagged.replace("Z", "+00:00"))
    else:
        record = context.instance.get_run_record_by_id(context.run.run_id)
        moment = record.create_timestamp if record else datetime.now(UTC)
    return to_utc_naive(moment)


def as_of_tag(moment: datetime) -> dict[str, str]:
    return {AS_OF_TAG: moment.isoformat()}


def full_refresh_for(context: dg.AssetExecutionContext) -> bool:
    """Whether the run is tagged ``nudge/full_refresh=true``."""
    return context.run.tags.get(FULL_REFRESH_TAG, "").strip().lower() == "true"
