"""The instant a Dagster run works at, shared by every step of the run."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from nudge.core.clock import to_utc_naive

AS_OF_TAG = "nudge/as_of"
DUCKDB_POOL = "duckdb"


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
