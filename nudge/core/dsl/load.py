"""Loading definitions: YAML files -> validated ``Content``, with every problem reported at once."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from nudge.core.dsl.checks import check_content
from nudge.core.dsl.parse import Parsed, parse_mapping
from nudge.core.dsl.problems import DefinitionError, DefinitionProblem
from nudge.core.dsl.spec import Content
from nudge.core.dsl.walk import segment_dependencies

__all__ = [
    "load_content_dir",
    "merge_content",
    "parse_definitions",
    "read_yaml",
    "segment_dependencies",
]


def parse_definitions(
    data: Mapping[str, Any],
    file: str,
    *,
    ignore_keys: Collection[str] = (),
    relative_to: datetime | None = None,
) -> tuple[Content, list[DefinitionProblem]]:
    """Parse one mapping of definitions (a YAML file's top level, a scenario, a ``define:`` step).

    Top-level keys other than segments/journeys/templates/layouts/topics/policies are problems unless listed
    in ``ignore_keys``. Definitions with problems are left out of the returned content. In a
    scenario, ``relative_to`` (its start) lets times be written ``"+<duration>"``. Cross-reference
    checks are not run here: call ``check_content`` on the final (merged) content.
    """
    parsed = parse_mapping(data, file, ignore_keys=ignore_keys, relative_to=relative_to)
    return parsed.content, parsed.problems


def merge_content(
    base: Content, override: Content, *, override_policies: bool | None = None
) -> Content:
    """``base`` with ``override``'s definitions replacing same-named ones (new ones appended).

    Policies are replaced when ``override_policies`` is true (pass whether the override had a
    ``policies`` key); when it is None they are replaced only if the override has any.
    """
    if override_policies is None:
        override_policies = override.policies != type(override.policies)()
    return Content(
        segments=_merge(base.segments, override.segments),
        journeys=_merge(base.journeys, override.journeys),
        templates=_merge(base.templates, override.templates),
        topics=_merge(base.topics, override.topics),
        layouts=_merge(base.layouts, override.layouts),
        policies=override.policies if override_policies else base.policies,
    )


def _merge(base: tuple[Any, ...], override: tuple[Any, ...]) -> tuple[Any, ...]:
    replacements = {item.name: item for item in override}
    kept = tuple(replacements.pop(item.name, item) for item in base)
    return kept + tuple(item for item in override if item.name in replacements)


def load_content_dir(path: Path, *, sql_segments: Collection[str] = ()) -> Content:
    """Every ``*.yml``/``*.yaml`` under ``path`` (recursive, sorted), parsed, merged and checked.

    Raises ``DefinitionError`` listing every problem of every file (syntax errors, bad values,
    duplicate names across files, unknown references).
    """
    path = Path(path)
    if not path.is_dir():
        raise DefinitionError(
            [
                DefinitionProblem(
                    str(path),
                    "",
                    "",
                    (
                        "is a file, not a folder"
                        if path.exists()
                        else "content directory does not exist"
                    )
                    + " (set NUDGE_CONTENT to the folder holding your YAML definitions)",
                )
            ]
        )
    files = sorted(p for p in path.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())
    problems: list[DefinitionProblem] = []
    content = Content()
    names: dict[tuple[str, str], str] = {}
    policies_file: str | None = None
    for file in files:
        try:
            data = read_yaml(file)
        except DefinitionError as error:
            problems += error.problems
            continue
        parsed = parse_mapping(data, str(file))
        problems += parsed.problems
        problems += _duplicates(parsed, names)
        if parsed.has_policies:
            if policies_file is not None:
                problems.append(
                    DefinitionProblem(
                        str(file),
                        "policies",
                        "",
                        f"policies are already defined in {policies_file}; keep them in one file",
                    )
                )
            policies_file = str(file)
        # The best-effort content, so the cross checks also see definitions with problems; when
        # there are no problems at all it is exactly the parsed content.
        content = merge_content(content, parsed.checkable, override_policies=parsed.has_policies)
    problems += check_content(content, sql_segments=sql_segments, also_known=names.keys())
    if problems:
        # Grouped by file (a stable sort keeps each file's problems in reading order).
        raise DefinitionError(sorted(problems, key=lambda problem: problem.file))
    return content


def _duplicates(parsed: Parsed, names: dict[tuple[str, str], str]) -> list[DefinitionProblem]:
    """Names ``parsed`` defines that an earlier file already defined (records the new ones)."""
    problems = []
    for (kind, name), file in parsed.names.items():
        if (kind, name) in names:
            problems.append(
                DefinitionProblem(
                    file,
                    f"{kind} '{name}'",
                    "name",
                    f"{kind} '{name}' is also defined in {names[(kind, name)]}; names must be unique",
                )
            )
        else:
            names[(kind, name)] = file
    return problems


class _Loader(yaml.SafeLoader):
    """Safe YAML with two fixes: ``17:00`` stays text (not the YAML 1.1 number 1020), and a
    repeated key is an error instead of silently keeping the last value."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str) and key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"found duplicate key '{key}'",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _sexagesimal_as_text(constructor: str) -> Any:
    base = getattr(yaml.SafeLoader, constructor)

    def construct(loader: _Loader, node: yaml.ScalarNode) -> Any:
        return node.value if ":" in node.value else base(loader, node)

    return construct


_Loader.add_constructor("tag:yaml.org,2002:int", _sexagesimal_as_text("construct_yaml_int"))
_Loader.add_constructor("tag:yaml.org,2002:float", _sexagesimal_as_text("construct_yaml_float"))


def read_yaml(path: Path) -> Any:
    """A YAML file's data; ``DefinitionError`` naming the file and line when it does not parse."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DefinitionError(
            [DefinitionProblem(str(path), "", "", f"cannot read file: {error}")]
        ) from error
    try:
        return yaml.load(text, Loader=_Loader)  # _Loader derives from SafeLoader
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        detail = " ".join(part for part in (error.context, error.problem) if part)
        raise DefinitionError(
            [DefinitionProblem(str(path), where, "", f"YAML syntax error: {detail}")]
        ) from error
    except yaml.YAMLError as error:
        raise DefinitionError(
            [DefinitionProblem(str(path), "", "", f"YAML syntax error: {error}")]
        ) from error
