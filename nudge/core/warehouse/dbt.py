"""Assemble a workspace's dbt project and build it in-process with a cached manifest.

Why in-process: dbt as a subprocess costs seconds per build (start-up, parse), an in-process
``dbtRunner(manifest=...)`` build a few tenths of a second, and every scenario step and scheduled
tick is a build. The manifest is parsed once per distinct project content and
reused for every build whatever ``as_of`` is: ``as_of`` goes in ``--vars``, and the warehouse path
comes from ``NUDGE_WAREHOUSE_PATH`` (read from profiles.yml at each invocation), so one manifest
serves every workspace with the same project content. Parsing itself starts from the previous
parse's partial-parse state, so a new workspace (a new scenario) re-reads only what differs.

How segment models are collected: every model tagged ``segment`` is a segment, wherever it lives
and however it is tagged (folder config in dbt_project.yml, ``config(tags=...)``, a properties
file). Only dbt knows the tags, so ``sql_segment_models`` parses the source project (the repo's
``dbt_project/``, or ``NUDGE_DBT_PROJECT``) once per content, with ``ref()`` stubbed out so that a
model reading a YAML segment parses without it; the names are cached in memory and on disk. The
assembly step writes ``models/marts/fct_segment_memberships.sql`` with an explicit list of those
models plus the generated ones (``segment_union([...])``), so each ``ref()`` is seen at parse
time: dbt orders the union after every segment and dagster-dbt sees the lineage. A macro looping
over ``graph.nodes`` cannot do that (the graph is not available while parsing); instead the macro
checks, when executing, that its list is exactly the graph's tagged models.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from nudge.core.clock import to_utc_naive
from nudge.core.environment import environment
from nudge.core.opt_out import trait_is_yes_macro
from nudge.core.segments.dbt_models import trait_timestamp_macro
from nudge.core.warehouse import settings
from nudge.core.warehouse.dbt_flag_source import use_frame_globals_for_flag_sources
from nudge.core.warehouse.settings import POSTGRES_URL_ENV, WAREHOUSE_ENV
from nudge.core.workspace import DBT_SOURCE_DIR, Workspace

GENERATED_SEGMENTS_DIR = Path("models/segments/generated")
MEMBERSHIPS_MODEL = Path("models/marts/fct_segment_memberships.sql")
TRAIT_TIMESTAMP_MACRO = Path("macros/generated/trait_timestamp.sql")
TRAIT_IS_YES_MACRO = Path("macros/generated/trait_is_yes.sql")
# Folders dbt writes into; neither copied from the repo nor part of the content hash.
_OUTPUT_DIRS = frozenset({"target", "logs", "dbt_packages"})
_SEGMENT_NAME = re.compile(r"[a-z][a-z0-9_]*")
_FAILED_STATUSES = frozenset({"error", "fail"})
_MANIFEST_CACHE_SIZE = 8

# dbt keeps global state (flags, adapters, the DuckDB environment): one invocation at a time.
_DBT_LOCK = threading.RLock()
_MANIFESTS: OrderedDict[str, Any] = OrderedDict()
# dbt's partial-parse state from the last parse in this process per warehouse, with the profile it
# was parsed for (on Postgres the URL too: dbt throws the state away when the profile differs), so
# a process alternating between warehouses (the test suite) keeps both (DbtWorkspaceProject._parse).
_PARTIAL_PARSE_SEEDS: dict[str, tuple[str, bytes]] = {}
# The database name comes from the file's stem, so the placeholder keeps "warehouse".
_PARSE_WAREHOUSE_PATH = Path(tempfile.gettempdir()) / "nudge-dbt-parse" / "warehouse.duckdb"
# The dbt project a workspace is assembled from, when not the repo's dbt_project/.
SOURCE_ENV = "NUDGE_DBT_PROJECT"
# Segment models found per source content; also kept on disk (content-addressed) beside the
# parse placeholder, so a new process (`nudge validate`) does not parse again.
_SEGMENT_MODELS: dict[str, dict[str, str]] = {}
_SEGMENT_MODELS_DIR = _PARSE_WAREHOUSE_PATH.parent / "segment-models"
# Added to the copy parsed by sql_segment_models only: a ref() that records no dependency, so a
# tagged model reading a YAML segment (not generated yet) parses.
_DISCOVERY_REF_MACRO = """\
{% macro ref() -%}
    {{- return(api.Relation.create(identifier=varargs[-1])) -}}
{%- endmacro %}
"""


class DbtBuildError(RuntimeError):
    """A dbt invocation failed; ``failures`` lists ``(node, message)`` for each failed node."""

    def __init__(self, summary: str, failures: list[tuple[str, str]]) -> None:
        lines = [summary, *(f"  {node}: {message}" for node, message in failures)]
        super().__init__("\n".join(lines))
        self.failures = failures


@dataclass(frozen=True)
class NodeResult:
    unique_id: str
    name: str
    resource_type: str
    status: str
    message: str | None
    failures: int | None
    # Wall time dbt measured for the node (compile + execute), in seconds.
    execution_time: float = 0.0


def _project_files(root: Path) -> dict[str, bytes]:
    """Every project file by relative posix path, without dbt's output folders."""
    files: dict[str, bytes] = {}
    if not root.is_dir():
        return files
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if relative.parts[0] in _OUTPUT_DIRS or not path.is_file() or _is_being_written(path):
            continue
        files[relative.as_posix()] = path.read_bytes()
    return files


def _is_being_written(path: Path) -> bool:
    """A file ``assemble`` is writing, before it replaces the real one."""
    return path.name.startswith(".") and path.name.endswith(".tmp")


def _content_hash(files: Mapping[str, bytes]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return digest.hexdigest()


def dbt_source_dir() -> Path:
    """The dbt project workspaces are assembled from: ``NUDGE_DBT_PROJECT``, else the repo's."""
    configured = os.environ.get(SOURCE_ENV)
    return Path(configured).resolve() if configured else DBT_SOURCE_DIR


def _source_files(source_dir: Path) -> dict[str, bytes]:
    """The source project's files, without generated segment models (the assembly writes those),
    with the macros generated from the segment compiler as it generates them now (its models call
    them; the repo commits a copy, a project named by NUDGE_DBT_PROJECT may lack it)."""
    files = {
        name: content
        for name, content in _project_files(source_dir).items()
        if not name.startswith(GENERATED_SEGMENTS_DIR.as_posix() + "/")
    }
    files[TRAIT_TIMESTAMP_MACRO.as_posix()] = trait_timestamp_macro().encode()
    files[TRAIT_IS_YES_MACRO.as_posix()] = trait_is_yes_macro().encode()
    return files


def copy_dbt_project(destination: Path) -> Path:
    """A fresh copy of the source project's files at ``destination`` (replacing what was there),
    for a variant of the project (a scenario's extra models)."""
    if destination.exists():
        shutil.rmtree(destination)
    for name, content in _source_files(dbt_source_dir()).items():
        (destination / name).parent.mkdir(parents=True, exist_ok=True)
        (destination / name).write_bytes(content)
    return destination


def sql_segment_models(source_dir: Path | None = None) -> dict[str, Path]:
    """Every model tagged ``segment`` in the source dbt project, name -> model file.

    Raises ``ValueError`` naming the file when a tagged model's name is not a segment name.
    """
    source_dir = source_dir or dbt_source_dir()
    files = _source_files(source_dir)
    from dbt.version import __version__ as dbt_version

    stamp = f"{_content_hash(files)}|{dbt_version}|{_DISCOVERY_REF_MACRO}"
    key = hashlib.sha256(stamp.encode()).hexdigest()
    with _DBT_LOCK:
        found = _SEGMENT_MODELS.get(key)
        if found is None:
            found = _SEGMENT_MODELS[key] = _cached_segment_models(key, files, source_dir)
    for name, path in found.items():
        if not _SEGMENT_NAME.fullmatch(name):
            raise ValueError(
                f"{source_dir / path}: model {name!r} is tagged segment, but a segment name "
                "must match [a-z][a-z0-9_]*: rename the model"
            )
    return {name: source_dir / path for name, path in sorted(found.items())}


def _cached_segment_models(
    key: str, files: Mapping[str, bytes], source_dir: Path
) -> dict[str, str]:
    cached = _SEGMENT_MODELS_DIR / f"{key}.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    found = _parse_segment_models(files, source_dir)
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_name(f"{cached.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps(found))
    partial.replace(cached)
    return found


def _parse_segment_models(files: Mapping[str, bytes], source_dir: Path) -> dict[str, str]:
    """Parse a scratch copy of the source project (``ref()`` stubbed) and read its tags."""
    dbt_runner = _dbt_runner_class()

    with tempfile.TemporaryDirectory(prefix="nudge-dbt-segments-") as scratch:
        root = Path(scratch)
        for name, content in {
            **files,
            "macros/_nudge_stub_ref.sql": _DISCOVERY_REF_MACRO.encode(),
        }.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(content)
        args = ["parse", "--project-dir", scratch, "--profiles-dir", scratch]
        args += ["--target-path", str(root / "target"), "--log-path", str(root / "logs")]
        args += ["--no-partial-parse", "--no-send-anonymous-usage-stats", "--quiet"]
        try:
            # Tags do not depend on the warehouse: always DuckDB's placeholder.
            with _warehouse_env(_PARSE_WAREHOUSE_PATH, "duckdb"):
                result = dbt_runner().invoke(args)
        finally:
            _close_duckdb()
    if not result.success or result.result is None:
        raise DbtBuildError(f"dbt parse of {source_dir} failed: {result.exception}", [])
    return {
        node.name: node.original_file_path
        for node in result.result.nodes.values()
        if node.resource_type == "model" and "segment" in node.tags
    }


def _memberships_model(segment_models: list[str]) -> bytes:
    listed = ", ".join(f"'{name}'" for name in segment_models)
    return (
        "-- Generated by nudge.core.warehouse.dbt: current members of every model tagged `segment`.\n"
        "-- Each workspace's assembly rewrites it with its own segments. Do not edit.\n"
        '{{ config(post_hook="{{ segment_schema_aliases() }}") }}\n'
        f"{{{{ segment_union([{listed}]) }}}}\n"
    ).encode()


def committed_generated_files(source_dir: Path | None = None) -> dict[str, bytes]:
    """The generated files of the source project on its own (no YAML segments), by relative
    path: the trait_timestamp and trait_is_yes macros and the membership union over the project's own segment
    models. The repo's dbt_project/ commits them so that dbt runs there without nudge; the
    generators stay the source (a test checks the copies are current)."""
    source_dir = source_dir or dbt_source_dir()
    return {
        TRAIT_TIMESTAMP_MACRO.as_posix(): trait_timestamp_macro().encode(),
        TRAIT_IS_YES_MACRO.as_posix(): trait_is_yes_macro().encode(),
        MEMBERSHIPS_MODEL.as_posix(): _memberships_model(sorted(sql_segment_models(source_dir))),
    }


def write_committed_generated_files(source_dir: Path | None = None) -> list[Path]:
    """Rewrite the source project's committed generated files that differ from what the
    generators produce now (after changing the segment compiler or the project's segment
    models); returns the files written."""
    source_dir = source_dir or dbt_source_dir()
    written = []
    for name, content in committed_generated_files(source_dir).items():
        path = source_dir / name
        if not path.is_file() or path.read_bytes() != content:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            written.append(path)
    return written


def _desired_files(source_dir: Path, generated_segments: Mapping[str, str]) -> dict[str, bytes]:
    files = _source_files(source_dir)
    sql_models = sql_segment_models(source_dir)
    for name, sql in generated_segments.items():
        if not _SEGMENT_NAME.fullmatch(name):
            raise ValueError(f"segment name {name!r} does not match [a-z][a-z0-9_]*")
        if name in sql_models:
            raise ValueError(
                f"segment {name!r} is defined in YAML and as the SQL model "
                f"{sql_models[name]}: rename one of them"
            )
        files[(GENERATED_SEGMENTS_DIR / f"{name}.sql").as_posix()] = sql.encode()
    segment_models = sorted(sql_models.keys() | generated_segments.keys())
    files[MEMBERSHIPS_MODEL.as_posix()] = _memberships_model(segment_models)
    return files


@contextmanager
def _warehouse_env(
    path: Path, warehouse: str | None = None, postgres_url: str | None = None
) -> Iterator[None]:
    """Point profiles.yml at the DuckDB file ``path`` (and, when given, at the warehouse
    ``warehouse`` and the Postgres database ``postgres_url``) for one dbt invocation, then
    restore the environment."""
    values = {"NUDGE_WAREHOUSE_PATH": str(path)}
    if warehouse is not None:
        values[WAREHOUSE_ENV] = warehouse
    if postgres_url is not None:
        values[POSTGRES_URL_ENV] = postgres_url
    with environment(values):
        yield


@cache
def _dbt_runner_class() -> type:
    """dbt's programmatic runner, with the stack walk dbt-common does for every adapter's
    behavior flags made cheap (``dbt_flag_source``) once per process."""
    from dbt.cli.main import dbtRunner

    use_frame_globals_for_flag_sources()
    return dbtRunner


def _close_duckdb() -> None:
    """Drop the DuckDB environment dbt-duckdb keeps at class level, so no handle (and no file
    lock) outlives the invocation."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    with DuckDBConnectionManager._LOCK:
        env = DuckDBConnectionManager._ENV
        DuckDBConnectionManager._ENV = None
        if env is not None:
            env.close()


def _reset_compiled_state(manifest: Any) -> None:
    """Forget what the previous build compiled into the shared manifest's nodes.

    dbt stores compiled SQL on the nodes and treats an ephemeral model whose CTEs were injected
    once as done: with a reused manifest, the next build would reuse SQL rendered for the
    previous as_of, or fail with "Table with name __dbt__cte__... does not exist".
    """
    for node in manifest.nodes.values():
        if hasattr(node, "extra_ctes_injected"):
            node.compiled = False
            node.compiled_code = None
            node.extra_ctes_injected = False
            node.extra_ctes = []
            node._pre_injected_sql = None


def _format_as_of(as_of: datetime) -> str:
    return to_utc_naive(as_of).isoformat()


class DbtWorkspaceProject:
    """The dbt project of one workspace: assembly, cached parsing and in-process builds."""

    def __init__(
        self,
        workspace: Workspace,
        source_dir: Path | None = None,
        *,
        warehouse: str | None = None,
        postgres_url: str | None = None,
    ) -> None:
        self.workspace = workspace
        # The dbt project copied into the workspace (default: see dbt_source_dir).
        self.source_dir = source_dir or dbt_source_dir()
        # The warehouse dbt builds in (default: NUDGE_WAREHOUSE) and, for postgres, the database
        # (default: NUDGE_POSTGRES_URL); both pinned for every invocation of this project.
        self.warehouse = warehouse or settings.warehouse()
        self.postgres_url = postgres_url

    @property
    def project_dir(self) -> Path:
        return self.workspace.dbt_project_dir

    @property
    def target_dir(self) -> Path:
        return self.workspace.dbt_target_dir

    @property
    def manifest_path(self) -> Path:
        return self.target_dir / "manifest.json"

    def assemble(self, generated_segments: Mapping[str, str]) -> bool:
        """Sync the source dbt project plus one model per generated segment into the workspace.

        Only files whose content differs are written and stale files are removed, so an
        unchanged project keeps its files (and its cached manifest). Returns whether anything
        changed.
        """
        desired = _desired_files(self.source_dir, generated_segments)
        current = _project_files(self.project_dir)
        changed = False
        for name in current.keys() - desired.keys():
            (self.project_dir / name).unlink()
            changed = True
        for name, content in desired.items():
            if current.get(name) != content:
                path = self.project_dir / name
                path.parent.mkdir(parents=True, exist_ok=True)
                # Whole files only: a step of a parallel run may be parsing the project while
                # another process assembles it.
                temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                temporary.write_bytes(content)
                os.replace(temporary, path)
                changed = True
        if changed:
            self._remove_empty_dirs()
        return changed

    def _remove_empty_dirs(self) -> None:
        for path in sorted(self.project_dir.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            relative = path.relative_to(self.project_dir)
            if relative.parts[0] in _OUTPUT_DIRS or not path.is_dir():
                continue
            if not any(path.iterdir()):
                path.rmdir()

    def _common_args(self) -> list[str]:
        return [
            "--project-dir",
            str(self.project_dir),
            "--profiles-dir",
            str(self.project_dir),
            "--target-path",
            str(self.target_dir),
            "--log-path",
            str(self.project_dir / "logs"),
            "--no-send-anonymous-usage-stats",
            "--quiet",
        ]

    def manifest(self) -> Any:
        """The parsed ``Manifest`` of the assembled project, parsed once per content in this
        process (and shared by every workspace with the same content); ``target/manifest.json``
        is left for dagster-dbt."""
        if not (self.project_dir / "dbt_project.yml").is_file():
            raise FileNotFoundError(f"no dbt project at {self.project_dir}: call assemble() first")
        # A manifest is parsed for one adapter, and on Postgres it names the database in every
        # relation: the warehouse and that database are part of the key.
        database = (
            settings.postgres_address(self.postgres_url).dbname
            if self.warehouse == "postgres"
            else ""
        )
        key = f"{self.warehouse}:{database}:{_content_hash(_project_files(self.project_dir))}"
        with _DBT_LOCK:
            manifest = _MANIFESTS.get(key)
            parsed = manifest is None
            if manifest is None:
                manifest = _MANIFESTS[key] = self._parse()
                while len(_MANIFESTS) > _MANIFEST_CACHE_SIZE:
                    _MANIFESTS.popitem(last=False)
            _MANIFESTS.move_to_end(key)
            self._sync_manifest_json(manifest, key, already_written=parsed)
            return manifest

    def _parse(self) -> Any:
        """Parse in-process. The warehouse path given to profiles.yml while parsing is a fixed
        placeholder (parsing never opens it), so dbt's partial-parse state does not depend on
        the workspace: a fresh workspace starts from the last parse's state (seeded into its
        target/) and only re-reads the files that differ, instead of a full parse."""
        dbt_runner = _dbt_runner_class()

        profile = self.warehouse
        if self.warehouse == "postgres":
            profile += ":" + (self.postgres_url or settings.postgres_url())
        state = self.target_dir / "partial_parse.msgpack"
        seeded_profile, seed = _PARTIAL_PARSE_SEEDS.get(self.warehouse, ("", b""))
        if seeded_profile == profile and not state.is_file():
            self.target_dir.mkdir(parents=True, exist_ok=True)
            state.write_bytes(seed)
        try:
            with _warehouse_env(_PARSE_WAREHOUSE_PATH, self.warehouse, self.postgres_url):
                result = dbt_runner().invoke(["parse", *self._common_args()])
        finally:
            _close_duckdb()
        if not result.success or result.result is None:
            raise DbtBuildError(f"dbt parse of {self.project_dir} failed: {result.exception}", [])
        if state.is_file():
            _PARTIAL_PARSE_SEEDS[self.warehouse] = (profile, state.read_bytes())
        return result.result

    def _sync_manifest_json(self, manifest: Any, key: str, *, already_written: bool) -> None:
        """Keep target/manifest.json (read by dagster-dbt) in step with the cached manifest; a
        marker file records which project content it was written for."""
        marker = self.target_dir / ".nudge-manifest-hash"
        if not already_written:
            if self.manifest_path.is_file() and marker.is_file() and marker.read_text() == key:
                return
            self.target_dir.mkdir(parents=True, exist_ok=True)
            manifest.write(str(self.manifest_path))
        marker.write_text(key)

    def build(
        self,
        as_of: datetime,
        *,
        select: str | None = None,
        exclude: str | None = None,
        full_refresh: bool = False,
    ) -> list[NodeResult]:
        """``dbt build`` at ``as_of`` (naive UTC, or aware), in-process with the cached manifest;
        with ``full_refresh``, every model is rebuilt from scratch but the logs that cannot be
        (the membership history, the log of segment definitions: ``full_refresh=false``).

        Raises ``DbtBuildError`` naming every failed or errored node and its message.
        """

        # --no-write-json: manifest.json is written when parsing; rewriting it (and
        # run_results.json) on every build costs a sizeable share of a small build.
        # dbt unit tests check the models' SQL on fixed rows, not the data: they run when the
        # project is built on its own (dbt_project/README.md), not in every pipeline run.
        args = [
            "build",
            *self._common_args(),
            "--no-write-json",
            "--exclude-resource-type",
            "unit_test",
            "--vars",
            json.dumps({"as_of": _format_as_of(as_of)}),
        ]
        if select:
            args += ["--select", select]
        if exclude:
            args += ["--exclude", exclude]
        if full_refresh:
            args.append("--full-refresh")
        result = self._invoke(args)
        run = result.result
        nodes = [
            NodeResult(
                unique_id=r.node.unique_id,
                name=r.node.name,
                resource_type=str(r.node.resource_type),
                status=str(r.status),
                message=r.message,
                failures=r.failures,
                execution_time=float(getattr(r, "execution_time", 0.0) or 0.0),
            )
            for r in (getattr(run, "results", None) or [])
        ]
        failed = [
            (n.unique_id, n.message or n.status) for n in nodes if n.status in _FAILED_STATUSES
        ]
        if failed or not result.success:
            summary = f"dbt build at as_of={_format_as_of(as_of)} failed"
            if result.exception is not None:  # named by its class when it says nothing
                summary += f": {result.exception or type(result.exception).__name__}"
            raise DbtBuildError(summary, failed)
        return nodes

    def _invoke(self, args: list[str]) -> Any:
        """Run dbt with ``args`` on the parsed manifest against this workspace's warehouse, one
        invocation at a time, and release DuckDB's file after it."""
        dbt_runner = _dbt_runner_class()

        with _DBT_LOCK:
            manifest = self.manifest()
            _reset_compiled_state(manifest)
            try:
                with _warehouse_env(
                    self.workspace.warehouse_path, self.warehouse, self.postgres_url
                ):
                    return dbt_runner(manifest=manifest).invoke(args)
            finally:
                _close_duckdb()

    def compile(self, as_of: datetime, *, full_refresh: bool = False) -> dict[str, str]:
        """Every model's SQL as ``dbt compile`` renders it at ``as_of`` against the built
        warehouse, by model name: incremental models render their incremental branch, or their
        first build's with ``full_refresh``."""

        args = [
            "compile",
            *self._common_args(),
            "--no-write-json",
            "--select",
            "resource_type:model",
            "--vars",
            json.dumps({"as_of": _format_as_of(as_of)}),
            *(["--full-refresh"] if full_refresh else []),
        ]
        result = self._invoke(args)
        if not result.success or result.result is None:
            raise DbtBuildError(f"dbt compile of {self.project_dir} failed: {result.exception}", [])
        return {r.node.name: r.node.compiled_code for r in result.result.results}
