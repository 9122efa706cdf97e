"""Warnings about template variables nothing can provide (``nudge validate``).

A template is rendered with the variables ``TEMPLATE_VARIABLES`` names (``senders.templates``
builds them; a test keeps the two lists equal): ``{{ usr.first_name }}`` renders nothing useful,
or fails the send, because there is no ``usr``. Every top-level name a template reads that is not
one of them (and not set inside the template) is a warning with a "did you mean". When the
warehouse holds loaded data, ``user.<trait>`` and ``event.<property>`` are also looked up among
the traits and event properties ever seen (``nudge.core.segments.data_checks.SeenNames``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import duckdb
from jinja2 import TemplateSyntaxError, meta, nodes
from jinja2.sandbox import SandboxedEnvironment

from nudge.core.dsl.problems import did_you_mean
from nudge.core.dsl.spec import Content, Template
from nudge.core.segments.data_checks import DataWarning, SeenNames
from nudge.core.warehouse.connection import connect, warehouse_exists
from nudge.core.workspace import Workspace

TEMPLATE_VARIABLES = (
    "user", "event", "journey", "step", "delivery_id", "unsubscribe_url", "preferences_url",
)  # fmt: skip
# Attributes of ``user`` that are not traits.
USER_BUILTINS = ("id",)
_JINJA = SandboxedEnvironment()


def _strings(value: Any, field: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield field, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{field}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _strings(item, f"{field}[{i}]")


def _attributes(tree: nodes.Template, scope: str) -> set[str]:
    """The names read as ``scope.name`` or ``scope['name']``."""
    names: set[str] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if not (isinstance(node.node, nodes.Name) and node.node.name == scope):
            continue
        if isinstance(node, nodes.Getattr):
            names.add(node.attr)
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            names.add(node.arg.value)
    return names


def template_warnings(template: Template, seen: SeenNames | None) -> list[DataWarning]:
    where = (template.origin.file, template.origin.item)
    warnings: list[DataWarning] = []
    for field, source in _strings(dict(template.fields), ""):
        field = field.removeprefix(".")
        try:
            tree = _JINJA.parse(source)
        except TemplateSyntaxError:
            continue  # reported as an error by the definition checks
        for name in sorted(meta.find_undeclared_variables(tree) - set(TEMPLATE_VARIABLES)):
            warnings.append(
                DataWarning(
                    *where,
                    field,
                    f"variable {name!r} is not provided to templates"
                    f"{did_you_mean(name, TEMPLATE_VARIABLES)}; they get "
                    + ", ".join(TEMPLATE_VARIABLES),
                )
            )
        if seen is None:
            continue
        traits = seen.traits | set(USER_BUILTINS)
        for trait in sorted(_attributes(tree, "user") - traits if seen.traits else ()):
            warnings.append(
                DataWarning(
                    *where,
                    field,
                    f"user.{trait}: trait {trait!r} never seen in the data"
                    f"{did_you_mean(trait, traits)}",
                )
            )
        properties = set().union(*seen.properties.values()) if seen.properties else set()
        for prop in sorted(_attributes(tree, "event") - properties if properties else ()):
            warnings.append(
                DataWarning(
                    *where,
                    field,
                    f"event.{prop}: property {prop!r} never seen on any event"
                    f"{did_you_mean(prop, properties)}",
                )
            )
    return warnings


def content_template_warnings(content: Content, seen: SeenNames | None) -> list[DataWarning]:
    """``template_warnings`` of every template; ``seen`` is None when no data was loaded."""
    return [w for template in content.templates for w in template_warnings(template, seen)]


def workspace_seen_names(workspace: Workspace) -> SeenNames | None:
    """The names the workspace's loaded data contains; None without a warehouse or events."""
    if not warehouse_exists(workspace.warehouse_path):
        return None
    with connect(workspace.warehouse_path, read_only=True) as con:
        try:
            (rows,) = con.execute("select count(*) from raw.events").fetchone()
        except duckdb.CatalogException:
            return None
        return SeenNames.read(con) if rows else None
