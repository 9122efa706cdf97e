"""Warnings about template variables nothing can provide (``nudge validate``).

A template is rendered with the variables ``TEMPLATE_VARIABLES`` names (``senders.templates``
builds them; a test keeps the two lists equal): ``{{ usr.first_name }}`` renders nothing useful,
or fails the send, because there is no ``usr``. Every top-level name a template reads that is not
one of them (and not set inside the template) is a warning with a "did you mean". When the
warehouse holds loaded data, ``user.<trait>`` and ``event.<property>`` are also looked up among
the traits and event properties ever seen (``nudge.core.segments.data_checks.SeenNames``).
A journey step sending a template that reads ``event.<property>`` without a default is a warning
when the journey's trigger starts no event (the message cannot render), or when the data shows
the property only on events other than the trigger's. Layouts are checked like templates.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import duckdb
from jinja2 import TemplateSyntaxError, meta, nodes
from jinja2.sandbox import SandboxedEnvironment

from nudge.core.dsl.problems import did_you_mean
from nudge.core.dsl.spec import (
    LAYOUT_CONTENT_VARIABLE,
    Content,
    EventTrigger,
    Layout,
    Send,
    Template,
)
from nudge.core.dsl.triggers.registry import trigger_kind
from nudge.core.dsl.walk import iter_steps
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
    return {
        name
        for node in tree.find_all((nodes.Getattr, nodes.Getitem))
        for name in _attribute_of(node, scope)
    }


def _attribute_of(node: nodes.Node, scope: str) -> list[str]:
    """``[name]`` when ``node`` reads ``scope.name`` or ``scope['name']``, else ``[]``."""
    if not isinstance(node, nodes.Getattr | nodes.Getitem):
        return []
    if not (isinstance(node.node, nodes.Name) and node.node.name == scope):
        return []
    if isinstance(node, nodes.Getattr):
        return [node.attr]
    if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
        return [node.arg.value]
    return []


def template_warnings(template: Template, seen: SeenNames | None) -> list[DataWarning]:
    where = (template.origin.file, template.origin.item)
    return [
        warning
        for field, source in _strings(dict(template.fields), "")
        for warning in _source_warnings(where, field.removeprefix("."), source, seen)
    ]


def layout_warnings(layout: Layout, seen: SeenNames | None) -> list[DataWarning]:
    """A layout gets what its templates get, and ``content`` (the template's html)."""
    where = (layout.origin.file, layout.origin.item)
    return _source_warnings(where, "html", layout.html, seen, (LAYOUT_CONTENT_VARIABLE,))


def _source_warnings(
    where: tuple[str, str],
    field: str,
    source: str,
    seen: SeenNames | None,
    also_provided: tuple[str, ...] = (),
) -> list[DataWarning]:
    try:
        tree = _JINJA.parse(source)
    except TemplateSyntaxError:
        return []  # reported as an error by the definition checks
    provided = (*TEMPLATE_VARIABLES, *also_provided)
    warnings: list[DataWarning] = []
    for name in sorted(meta.find_undeclared_variables(tree) - set(provided)):
        warnings.append(
            DataWarning(
                *where,
                field,
                f"variable {name!r} is not provided to templates"
                f"{did_you_mean(name, provided)}; they get " + ", ".join(provided),
            )
        )
    if seen is None:
        return warnings
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


def _unguarded_event_reads(tree: nodes.Template) -> set[str]:
    """The ``event.<property>`` reads that fail when the property is missing: not the value of
    a ``default`` filter, and not of a property the template tests with ``is defined``."""
    defaulted = {
        id(node.node) for node in tree.find_all(nodes.Filter) if node.name in ("default", "d")
    }
    tested = {
        prop
        for node in tree.find_all(nodes.Test)
        if node.name in ("defined", "undefined")
        for prop in _attribute_of(node.node, "event")
    }
    return {
        prop
        for node in tree.find_all((nodes.Getattr, nodes.Getitem))
        if id(node) not in defaulted
        for prop in _attribute_of(node, "event")
        if prop not in tested
    }


def _template_event_reads(content: Content, template: Template) -> set[str]:
    layout = content.layout(template.layout) if template.layout else None
    sources = [source for _, source in _strings(dict(template.fields), "")]
    reads: set[str] = set()
    for source in [*sources, *([layout.html] if layout else [])]:
        try:
            reads |= _unguarded_event_reads(_JINJA.parse(source))
        except TemplateSyntaxError:
            continue  # reported as an error by the definition checks
    return reads


def send_step_warnings(content: Content, seen: SeenNames | None) -> list[DataWarning]:
    """A journey step sending a template that reads ``event.<property>`` (without a default)
    the step cannot provide: the journey's trigger starts no event (``event`` is empty, every
    message fails to render), or, with loaded data, the property was seen on other events but
    never on the one that starts the journey."""
    warnings: list[DataWarning] = []
    for journey in content.journeys:
        kind = trigger_kind(journey.trigger) if journey.trigger is not None else None
        if kind is None:
            continue
        trigger_event = journey.trigger.name if isinstance(journey.trigger, EventTrigger) else None
        on_trigger = seen.properties.get(trigger_event) if seen and trigger_event else None
        everywhere = set().union(*seen.properties.values()) if seen and seen.properties else set()
        for path, step in iter_steps(journey.steps):
            send = step.action
            template = content.template(send.template) if isinstance(send, Send) else None
            if template is None:
                continue
            for prop in sorted(_template_event_reads(content, template)):
                if not kind.carries_event:
                    why = (
                        f"a {kind.key} trigger starts no event, so every message fails to "
                        f"render; use an event trigger or write event.{prop} | default(...)"
                    )
                elif on_trigger is not None and prop not in on_trigger and prop in everywhere:
                    why = (
                        f"property {prop!r} was never seen on event {trigger_event!r}, which "
                        "starts this journey (only on other events)"
                    )
                else:
                    continue
                warnings.append(
                    DataWarning(
                        journey.origin.file,
                        journey.origin.item,
                        f"{path}.send.template",
                        f"template {template.name!r} reads event.{prop}, but {why}",
                    )
                )
    return warnings


def content_template_warnings(content: Content, seen: SeenNames | None) -> list[DataWarning]:
    """``template_warnings`` of every template, ``layout_warnings`` of every layout and
    ``send_step_warnings``; ``seen`` is None when no data was loaded."""
    return [
        *(w for template in content.templates for w in template_warnings(template, seen)),
        *(w for layout in content.layouts for w in layout_warnings(layout, seen)),
        *send_step_warnings(content, seen),
    ]


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
