"""How dbt nodes appear in Dagster: keys by warehouse schema, groups by layer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings

# dbt sources over tables that Python assets write: the same key joins the lineage.
SOURCE_KEYS = {
    ("raw", "events"): dg.AssetKey(["raw", "events"]),
    ("nudge", "delivery_ledger"): dg.AssetKey(["delivery", "ledger"]),
    ("nudge", "outbox"): dg.AssetKey(["delivery", "outbox"]),
    ("nudge", "journey_entries"): dg.AssetKey(["journeys", "state"]),
    ("nudge", "journey_transitions"): dg.AssetKey(["journeys", "state"]),
    ("nudge", "runs"): dg.AssetKey(["journeys", "state"]),
}


class NudgeDbtTranslator(DagsterDbtTranslator):
    def __init__(self) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            key = (dbt_resource_props["source_name"], dbt_resource_props["name"])
            if key in SOURCE_KEYS:
                return SOURCE_KEYS[key]
            return dg.AssetKey(list(key))
        return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "source":
            return None
        return dbt_resource_props["schema"]
