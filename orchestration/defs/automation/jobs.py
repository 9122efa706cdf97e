"""The pipeline job: every asset, one run."""

import dagster as dg

pipeline_job = dg.define_asset_job(
    "nudge_pipeline",
    selection=dg.AssetSelection.all(),
    description="One pipeline run: load landing, dbt, journeys, send, ledger, reports.",
)
