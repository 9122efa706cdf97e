"""The outbox, one sender per channel and the delivery ledger."""

import dagster as dg

from nudge.core.warehouse.connection import connect
from orchestration.asset_keys import JOURNEY_STATE, LEDGER, OUTBOX, sender_key
from orchestration.defs.delivery.checks import delivery_checks
from orchestration.defs.stage_order import stage_tags
from orchestration.location import count_rows, load_location
from orchestration.resources import ChannelDelivery
from orchestration.run_context import as_of_for, warehouse_pool
from orchestration.stages import Stage, finish_run, send_pending
from senders.registry import CHANNELS, NO_PROVIDER

SAMPLE = 5


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


def outbox_asset() -> dg.AssetsDefinition:
    @dg.asset(
        key=OUTBOX,
        deps=[JOURNEY_STATE],
        group_name="delivery",
        kinds={"duckdb"},
        pool=warehouse_pool(),
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

    return outbox


def sent_sample(run_id: str, channel: str) -> list[list[str]]:
    """A few of this run's ledger rows of ``channel``: delivery id, user, status, reason."""
    with connect(load_location().workspace.warehouse_path, read_only=True) as con:
        rows = con.execute(
            """select delivery_id, user_id, status, coalesce(reason, '')
               from nudge.delivery_ledger where run_id = ? and channel = ?
               order by completed_at desc nulls last, delivery_id limit ?""",
            [run_id, channel, SAMPLE],
        ).fetchall()
    return [list(map(str, row)) for row in rows]


def channel_sender(channel: str) -> dg.AssetsDefinition:
    """The asset that sends ``channel``'s pending messages through its configured provider."""

    @dg.asset(
        key=sender_key(channel),
        deps=[OUTBOX],
        group_name="delivery",
        kinds={channel.replace("_", "")},
        pool=warehouse_pool(),
        required_resource_keys={channel},
        op_tags=stage_tags(Stage.SEND),
        description=f"Sends pending {channel} messages through the provider NUDGE_"
        f"{channel.upper()}_PROVIDER names (none: they stay pending); a dead or hung provider, "
        "or the send time budget, leaves the rest pending for the next run.",
    )
    def sender(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        delivery: ChannelDelivery = getattr(context.resources, channel)
        location = load_location()
        provider = delivery.open_provider(location.workspace)
        if provider is None:
            pending = count_rows(
                f"""select 'pending', count(*) from nudge.outbox o
                    anti join nudge.delivery_ledger l using (idempotency_key)
                    where o.channel = '{channel}'"""
            )
            if pending.get("pending"):
                context.log.warning(
                    f"{pending['pending']:,} {channel} messages wait for a provider: set "
                    f"NUDGE_{channel.upper()}_PROVIDER"
                )
            return dg.MaterializeResult(metadata={"provider": NO_PROVIDER, **pending})
        try:
            summary = send_pending(
                location.workspace,
                location.content,
                {channel: provider},
                as_of=as_of_for(context),
                run_id=context.run.run_id,
                channels=(channel,),
            )
        finally:
            provider.close()
        for note in summary.notes():
            context.log.warning(note)
        return dg.MaterializeResult(
            metadata={
                "provider": delivery.provider,
                **summary.metadata(),
                "sample": dg.MetadataValue.json(sent_sample(context.run.run_id, channel)),
            }
        )

    return sender


def ledger_asset(senders: list[dg.AssetsDefinition]) -> dg.AssetsDefinition:
    @dg.asset(
        key=LEDGER,
        deps=[s.key for s in senders],
        group_name="delivery",
        kinds={"duckdb"},
        pool=warehouse_pool(),
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

    return delivery_ledger


def delivery_definitions() -> dg.Definitions:
    """The outbox, one sender per channel (independent steps: on a server warehouse they run
    at once, each dispatching its own channel's rows) and the ledger after them all."""
    senders = [channel_sender(channel) for channel in CHANNELS]
    return dg.Definitions(
        assets=[outbox_asset(), *senders, ledger_asset(senders)], asset_checks=delivery_checks()
    )
