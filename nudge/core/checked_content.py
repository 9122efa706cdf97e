"""Loading a workspace's definitions, with everything checked before any run starts."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from nudge.core.dsl.checks import check_content
from nudge.core.dsl.load import load_content_dir
from nudge.core.dsl.problems import DefinitionError, DefinitionProblem
from nudge.core.dsl.spec import Content
from nudge.core.segments.manual import manual_segment_names
from nudge.core.warehouse.dbt import sql_segment_models
from nudge.core.warehouse.settings import warehouse
from nudge.core.workspace import Workspace

log = logging.getLogger(__name__)


def sql_segment_names(dbt_dir: Path | None = None) -> set[str]:
    """Hand-written SQL segments: every model tagged ``segment`` in the source dbt project
    (default: ``nudge.core.warehouse.dbt.dbt_source_dir``), wherever it lives."""
    return set(sql_segment_models(dbt_dir))


def clash_problems(content: Content, sql_segments: Mapping[str, Path]) -> list[DefinitionProblem]:
    """A YAML segment may not take the name of a SQL segment model: both would be `segments.<name>`."""
    return [
        DefinitionProblem(
            segment.origin.file,
            segment.origin.item,
            "name",
            f"also the SQL segment model {sql_segments[segment.name]} (a dbt model tagged "
            "segment): rename one of them",
        )
        for segment in content.segments
        if segment.name in sql_segments
    ]


# The longest table name of each warehouse that has a limit a segment name could reach.
MAX_TABLE_NAME = {"postgres": 63}


def name_length_problems(content: Content, kind: str) -> list[DefinitionProblem]:
    """A YAML segment is the table `segments.<name>`: its name must fit the warehouse's limit
    (dbt would refuse it mid-build)."""
    limit = MAX_TABLE_NAME.get(kind)
    return [
        DefinitionProblem(
            segment.origin.file,
            segment.origin.item,
            "name",
            f"{len(segment.name)} characters, and {kind} table names are at most {limit}: "
            "shorten it",
        )
        for segment in content.segments
        if limit is not None and len(segment.name) > limit
    ]


def validate_content(content: Content, sql_segments: Mapping[str, Path]) -> None:
    """Raise ``DefinitionError`` listing every cross-reference problem and name clash.

    ``sql_segments`` maps each SQL segment model's name to its file (``sql_segment_models``).
    """
    problems = check_content(content, sql_segments=set(sql_segments)) + clash_problems(
        content, sql_segments
    )
    if problems:
        raise DefinitionError(problems)


def load_workspace_content(workspace: Workspace) -> Content:
    sql_segments = sql_segment_models()
    # Manual segments exist only as data: their names come from the landing area's uploads.
    known = set(sql_segments) | manual_segment_names(workspace)
    content = load_content_dir(workspace.content_dir, sql_segments=known)
    problems = clash_problems(content, sql_segments) + name_length_problems(content, warehouse())
    if problems:
        raise DefinitionError(problems)
    return content


class WatchedContent:
    """A workspace's checked content for a long-running server (the collector): read again when
    a file under the content folder changed, looked at no more often than every
    ``recheck_seconds``. If the edited content has problems, the last content read stays in
    use (and the problems are logged once per change), so a half-saved edit never stops sends;
    the first read raises ``DefinitionError`` as ``load_workspace_content`` does."""

    def __init__(self, workspace: Workspace, *, recheck_seconds: float = 1.0) -> None:
        self.workspace = workspace
        self.recheck_seconds = recheck_seconds
        self._lock = threading.Lock()
        self._content: Content | None = None
        self._seen: tuple[tuple[str, int, int], ...] | None = None
        self._checked = -math.inf

    def _fingerprint(self) -> tuple[tuple[str, int, int], ...]:
        """Every file under the content folder: its path, modification time and size."""
        found = []
        for path in sorted(self.workspace.content_dir.rglob("*")):
            try:
                stat = path.stat()
            except FileNotFoundError:  # removed while listed
                continue
            if path.is_file():
                found.append((str(path), stat.st_mtime_ns, stat.st_size))
        return tuple(found)

    def current(self) -> Content:
        """The content as the files hold it now (see the class)."""
        with self._lock:
            now = time.monotonic()
            if self._content is not None and now - self._checked < self.recheck_seconds:
                return self._content
            self._checked = now
            seen = self._fingerprint()
            if self._content is not None and seen == self._seen:
                return self._content
            self._seen = seen
            try:
                self._content = load_workspace_content(self.workspace)
            except DefinitionError as error:
                if self._content is None:
                    raise
                log.warning(
                    "the edited content in %s has problems; the content read before stays in"
                    " use until they are fixed:\n%s",
                    self.workspace.content_dir,
                    error,
                )
            return self._content
