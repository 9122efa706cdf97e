"""Per-run counts in ``nudge.run_counts``: planned / attempted / succeeded / failed / skipped per
journey step and channel, the run log analysts query.

A run may dispatch more than once under the same run id (one Dagster asset per channel, or a
rerun at the same ``as_of``): each dispatch adds its counts to the run's rows.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import polars as pl

MEASURES = ("planned", "attempted", "succeeded", "failed", "skipped")
# Ledger statuses decided without a provider call, by the measure they count under.
DECISION_MEASURES = {
    "skipped": "skipped",
    "dropped": "skipped",
    "undeliverable": "skipped",
    "failed": "failed",
}


@dataclass
class StepCounts:
    """Counts keyed by ``(journey, step, channel, measure)``."""

    counts: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)

    def add(self, frame: pl.DataFrame, measure: str) -> None:
        """Count the rows of ``frame`` (outbox columns) under ``measure``."""
        for journey, step, channel, n in frame.group_by("journey", "step", "channel").len().rows():
            self.counts[(journey, step, channel, measure)] += n

    def add_decision(self, journey: str, step: str, channel: str, status: str, n: int) -> None:
        """Count ``n`` rows decided as ``status`` (held and send rows count nowhere here)."""
        measure = DECISION_MEASURES.get(status)
        if measure is not None:
            self.counts[(journey, step, channel, measure)] += n

    def add_attempt(self, journey: str, step: str, channel: str, status: str) -> None:
        self.counts[(journey, step, channel, "attempted")] += 1
        self.counts[(journey, step, channel, "succeeded" if status == "sent" else "failed")] += 1

    def frame(self) -> pl.DataFrame:
        """One row per (journey, step, channel) with a column per measure."""
        rows: dict[tuple[str, str, str], dict[str, int]] = {}
        for (journey, step, channel, measure), n in self.counts.items():
            rows.setdefault((journey, step, channel), dict.fromkeys(MEASURES, 0))[measure] += n
        return pl.DataFrame(
            [
                {"journey": j, "step": s, "channel": c, **measures}
                for (j, s, c), measures in sorted(rows.items())
            ],
            schema={
                "journey": pl.String,
                "step": pl.String,
                "channel": pl.String,
                **dict.fromkeys(MEASURES, pl.Int64),
            },
        )


def record_run_counts(
    con: duckdb.DuckDBPyConnection, counts: StepCounts, *, run_id: str, as_of: datetime
) -> None:
    """Add ``counts`` to the run's rows of ``nudge.run_counts``."""
    frame = counts.frame()
    if frame.is_empty():
        return
    added = ", ".join(f"{m} = run_counts.{m} + excluded.{m}" for m in MEASURES)
    con.register("_nudge_run_counts", frame)
    try:
        con.execute(
            f"""insert into nudge.run_counts
                select $run_id, $as_of, journey, step, channel, {", ".join(MEASURES)}
                from _nudge_run_counts
                on conflict (run_id, journey, step, channel) do update set {added}""",
            {"run_id": run_id, "as_of": as_of},
        )
    finally:
        con.unregister("_nudge_run_counts")
