"""How dbt nodes appear in Dagster: keys by warehouse schema, groups by layer.

Every segment model (tagged ``segment``) is ``segments/<name>`` in the ``segments`` group,
wherever the model lives: journeys depend on ``segments/<name>`` whatever kind of segment it is,
and the engine reads it as ``segments.<name>`` (a view when the model lives in another schema, see
the ``segment_schema_aliases`` macro). A segment is described as its author described it: a YAML
segment by its own ``description`` (not "dbt model X" and the generated SQL), a manual segment
by what it is; the sources of manual uploads are in the ``segments`` group too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtProject

from orchestration.asset_keys import LEDGER, SEGMENTS_GROUP, SOURCE_KEYS, model_key, segment_key
from orchestration.stages import REPORTS_SELECTOR

# The models built after sending: the only ones that depend on this run's ledger in the graph.
REPORTS_TAG = REPORTS_SELECTOR.removeprefix("tag:")
# Groups of dbt sources that no Python asset writes (the others join the lineage by key).
SOURCE_GROUPS = {"manual_segments": SEGMENTS_GROUP}
MANUAL_KIND = "manual"


def manual_segment_description(name: str) -> str:
    return (
        f"Manual segment {name}: the user ids of its latest upload (`nudge segments upload`) at"
        " or before the run's as_of, limited to known users."
    )


def is_segment_model(dbt_resource_props: Mapping[str, Any]) -> bool:
    return dbt_resource_props["resource_type"] == "model" and "segment" in (
        dbt_resource_props.get("tags") or ()
    )


class NudgeDbtTranslator(DagsterDbtTranslator):
    """``segment_descriptions``: the description of each YAML segment, by name."""

    def __init__(self, segment_descriptions: Mapping[str, str] | None = None) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))
        self.segment_descriptions = dict(segment_descriptions or {})

    def get_description(self, dbt_resource_props: Mapping[str, Any]) -> str:
        if is_segment_model(dbt_resource_props):
            name = dbt_resource_props["name"]
            if name in self.segment_descriptions:
                return self.segment_descriptions[name]
            meta = (dbt_resource_props.get("config") or {}).get("meta") or {}
            if meta.get("segment_kind") == MANUAL_KIND:
                return manual_segment_description(name)
        return super().get_description(dbt_resource_props)

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            key = (dbt_resource_props["source_name"], dbt_resource_props["name"])
            if key in SOURCE_KEYS:
                return SOURCE_KEYS[key]
            return dg.AssetKey(list(key))
        if is_segment_model(dbt_resource_props):
            return segment_key(dbt_resource_props["name"])
        return model_key(dbt_resource_props["schema"], dbt_resource_props["name"])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "source":
            return SOURCE_GROUPS.get(dbt_resource_props["source_name"])
        if is_segment_model(dbt_resource_props):
            return SEGMENTS_GROUP
        return dbt_resource_props["schema"]

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> dg.AssetSpec:
        """Drop the ledger edge of every model but the reports.

        A segment with a ``message`` condition reads ``nudge.delivery_ledger`` as earlier runs
        left it, before this run sends; drawn as an edge, that read closes a cycle (segments ->
        journeys -> outbox -> email -> ledger -> segments) and the code location fails to load.
        """
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] != "model" or REPORTS_TAG in (props.get("tags") or ()):
            return spec
        deps = [dep for dep in spec.deps if dep.asset_key != LEDGER]
        return spec if len(deps) == len(spec.deps) else spec.replace_attributes(deps=deps)
