"""dbt models as Dagster assets, built in-process with the workspace's cached manifest.

dagster-dbt's ``DbtCliResource`` runs dbt as a subprocess (about 3.5 s a build when
measured); every pipeline run and scenario step pays that. The asset bodies below instead hand
the selection Dagster asks for to ``nudge.core.warehouse.dbt`` (dbt's in-process runner with a parsed
manifest, 0.2 to 0.4 s) and report each model as a materialization and each test as a check.
"""

import json
from collections.abc import Iterator, Sequence
from typing import Any

import dagster as dg
from dagster_dbt import DbtProject, dbt_assets
from dagster_dbt.asset_utils import get_asset_check_key_for_test, get_subset_selection_for_context

from nudge.core.dsl.spec import Content
from nudge.core.warehouse.dbt import DbtWorkspaceProject, NodeResult
from orchestration.defs.dbt.translator import SOURCE_KEYS, NudgeDbtTranslator
from orchestration.defs.stage_order import stage_tags
from orchestration.location import load_location
from orchestration.run_context import as_of_for, full_refresh_for, warehouse_pool
from orchestration.stages import REPORTS_SELECTOR, Stage

TRANSLATOR = NudgeDbtTranslator()


def selection_from_args(args: Sequence[str]) -> dict[str, str | None]:
    """``["--select", "a b", "--exclude", "c"]`` -> ``{"select": "a b", "exclude": "c"}``."""
    selection: dict[str, str | None] = {"select": None, "exclude": None}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        selection[flag.removeprefix("--")] = value
    return selection


def dbt_events(
    context: dg.AssetExecutionContext,
    project: DbtWorkspaceProject,
    dagster_project: DbtProject,
    select: str,
    exclude: str | None,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    manifest: dict[str, Any] = json.loads(project.manifest_path.read_text())
    args, _ = get_subset_selection_for_context(
        context, manifest, select, exclude, None, TRANSLATOR, None
    )
    results = project.build(
        as_of_for(context), full_refresh=full_refresh_for(context), **selection_from_args(args)
    )
    for result in results:
        yield from node_events(result, manifest, dagster_project)


def node_events(
    result: NodeResult, manifest: dict[str, Any], dagster_project: DbtProject
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    if result.resource_type == "model":
        key = TRANSLATOR.get_asset_spec(manifest, result.unique_id, dagster_project).key
        yield dg.MaterializeResult(
            asset_key=key, metadata={"dbt_status": result.status, "dbt_message": result.message}
        )
    elif result.resource_type == "test":
        check_key = get_asset_check_key_for_test(
            manifest, TRANSLATOR, result.unique_id, dagster_project
        )
        if check_key is not None:
            yield dg.AssetCheckResult(
                asset_key=check_key.asset_key,
                check_name=check_key.name,
                passed=result.status == "pass",
                metadata={"failures": result.failures or 0, "dbt_message": result.message},
            )


def segment_descriptions(content: Content) -> dict[str, str]:
    """What the Dagster UI says of each YAML segment: its own description, else where it is."""
    return {
        s.name: s.description or f"Segment {s.name}, defined in {s.origin.file}."
        for s in content.segments
    }


def source_specs(manifest: dict[str, Any], translator: NudgeDbtTranslator) -> list[dg.AssetSpec]:
    """The dbt sources no Python asset writes (manual segment uploads), described and grouped,
    instead of undescribed external assets in the default group."""
    specs = []
    for source in manifest["sources"].values():
        if (source["source_name"], source["name"]) in SOURCE_KEYS:
            continue
        specs.append(
            dg.AssetSpec(
                translator.get_asset_key(source),
                description=source.get("description") or source.get("source_description"),
                group_name=translator.get_group_name(source),
                kinds={"duckdb"},
            )
        )
    return specs


def build_dbt_definitions() -> list[dg.AssetsDefinition | dg.AssetSpec]:
    location = load_location()
    project = location.project
    dagster_project = DbtProject(
        project_dir=project.project_dir, target_path=project.manifest_path.parent
    )
    translator = NudgeDbtTranslator(segment_descriptions(location.content))

    @dbt_assets(
        manifest=project.manifest_path,
        project=dagster_project,
        dagster_dbt_translator=translator,
        exclude=REPORTS_SELECTOR,
        name="dbt_models",
        pool=warehouse_pool(),
        op_tags=stage_tags(Stage.BUILD_MODELS),
    )
    def dbt_models(context: dg.AssetExecutionContext):
        yield from dbt_events(context, project, dagster_project, "fqn:*", REPORTS_SELECTOR)

    @dbt_assets(
        manifest=project.manifest_path,
        project=dagster_project,
        dagster_dbt_translator=translator,
        select=REPORTS_SELECTOR,
        name="dbt_reports",
        pool=warehouse_pool(),
        op_tags=stage_tags(Stage.BUILD_REPORTS),
    )
    def dbt_reports(context: dg.AssetExecutionContext):
        yield from dbt_events(context, project, dagster_project, REPORTS_SELECTOR, None)

    manifest = json.loads(project.manifest_path.read_text())
    return [dbt_models, dbt_reports, *source_specs(manifest, translator)]


def dbt_definitions() -> dg.Definitions:
    return dg.Definitions(assets=build_dbt_definitions())
