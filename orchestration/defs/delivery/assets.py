"""The outbox, the channel senders and the delivery ledger."""

import dagster as dg

from nudge.core.warehouse.connection import connect
from orchestration.defs.delivery.checks import LEDGER, delivery_checks
from orchestration.defs.journeys.assets import JOURNEY_STATE
from orchestration.defs.stage_order import stage_tags
from orchestration.location import count_rows, load_location
from orchestration.resources import EmailDelivery
from orchestration.run_context import DUCKDB_POOL, as_of_for
from orchestration.stages import Stage, finish_run, send_pending

OUTBOX = dg.AssetKey(["delivery", "outbox"])
EMAIL = dg.AssetKey(["delivery", "email"])


RUN_COUNT_COLUMNS = ("journey", "step", "channel", "planned", "attempted", "succeeded", "failed",
                     "skipped")  # fmt: skip


def run_counts_table(run_id: str) -> dg.MetadataValue:
    """This run's nudge.run_counts rows as a Markdown table."""
    with connect(load_location().workspace.warehouse_path, read_only=True) as con:
        rows = con.execute(
            f"select {', '.join(RUN_COUNT_COLUMNS)} from nudge.run_counts where run_id = ? "
            "order by all",
            [run_id],
        ).fetchall()
    lines = [
        "| " + " | ".join(RUN_COUNT_COLUMNS) + " |",
        "|" + "---|" * len(RUN_COUNT_COLUMNS),
        *("| " + " | ".join(map(str, row)) + " |" for row in rows),
    ]
    return dg.MetadataValue.md("\n".join(lines))


@dg.asset(
    key=OUTBOX,
    deps=[JOURNEY_STATE],
    group_name="delivery",
    kinds={"duckdb"},
    pool=DUCKDB_POOL,
    op_tags=stage_tags(Stage.PLAN_JOURNEYS),
    description="Planned sends (nudge.outbox), one per idempotency key, waiting for a sender.",
)
def outbox() -> dg.MaterializeResult:
    pending = count_rows(
        """
        select o.channel, count(*) from nudge.outbox o
        anti join nudge.delivery_ledger l using (idempotency_key)
        group by all order by all
        """
    )
    return dg.MaterializeResult(metadata={f"pending.{k}": v for k, v in pending.items()})


@dg.asset(
    key=EMAIL,
    deps=[OUTBOX],
    group_name="delivery",
    kinds={"email"},
    pool=DUCKDB_POOL,
    op_tags=stage_tags(Stage.SEND),
    description="Sends pending email through the configured provider (SMTP by default); a dead or "
    "hung provider, or the send time budget, leaves the rest pending for the next run.",
)
def email_sender(context: dg.AssetExecutionContext, email: EmailDelivery) -> dg.MaterializeResult:
    location = load_location()
    provider = email.open_provider()
    try:
        summary = send_pending(
            location.workspace,
            location.content,
            {"email": provider},
            as_of=as_of_for(context),
            run_id=context.run.run_id,
            channels=("email",),
        )
    finally:
        provider.close()
    for note in summary.notes():
        context.log.warning(note)
    return dg.MaterializeResult(metadata=summary.metadata())


@dg.asset(
    key=LEDGER,
    deps=[EMAIL],
    group_name="delivery",
    kinds={"duckdb"},
    pool=DUCKDB_POOL,
    op_tags=stage_tags(Stage.SEND),
    description="One row per send with its status and reason (nudge.delivery_ledger).",
)
def delivery_ledger(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    statuses = count_rows(
        "select status, count(*) from nudge.delivery_ledger group by all order by all"
    )
    finish_run(load_location().workspace, run_id=context.run.run_id)
    return dg.MaterializeResult(
        metadata={
            **{f"status.{k}": v for k, v in statuses.items()},
            "run_counts": run_counts_table(context.run.run_id),
        }
    )


def delivery_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=[outbox, email_sender, delivery_ledger], asset_checks=delivery_checks()
    )
