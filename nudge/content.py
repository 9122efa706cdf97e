"""Loading a workspace's definitions, with everything checked before any run starts."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from journeys.engine import unsupported_features
from nudge.dsl.checks import check_content
from nudge.dsl.load import load_content_dir
from nudge.dsl.models import Content
from nudge.dsl.problems import DefinitionError, DefinitionProblem
from nudge.segments.manual import manual_segment_names
from nudge.workspace import DBT_SOURCE_DIR, Workspace

SQL_SEGMENTS_DIR = Path("models") / "segments"
GENERATED_DIR_NAME = "generated"


def sql_segment_names(dbt_dir: Path = DBT_SOURCE_DIR) -> set[str]:
    """Hand-written SQL segment models: every model under ``models/segments/`` of the dbt project."""
    root = dbt_dir / SQL_SEGMENTS_DIR
    return {
        path.stem
        for path in root.rglob("*.sql")
        if GENERATED_DIR_NAME not in path.relative_to(root).parts
    }


def engine_problems(content: Content) -> list[DefinitionProblem]:
    """Journeys that use something the engine cannot run yet are refused, never half-run."""
    return [
        DefinitionProblem(journey.origin.file, journey.origin.item, "", message)
        for journey in content.journeys
        for message in unsupported_features(journey)
    ]


def validate_content(content: Content, sql_segments: Iterable[str]) -> None:
    """Raise ``DefinitionError`` listing every cross-reference and engine problem at once."""
    problems = check_content(content, sql_segments=set(sql_segments)) + engine_problems(content)
    if problems:
        raise DefinitionError(problems)


def load_workspace_content(workspace: Workspace) -> Content:
    # Manual segments exist only as data: their names come from the landing area's uploads.
    known = sql_segment_names() | manual_segment_names(workspace)
    content = load_content_dir(workspace.content_dir, sql_segments=known)
    problems = engine_problems(content)
    if problems:
        raise DefinitionError(problems)
    return content
