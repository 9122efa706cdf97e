"""Checks across definitions: references, cycles, step ids, split percents, templates, layouts."""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterator
from typing import Any

from jinja2 import TemplateSyntaxError, nodes
from jinja2.sandbox import SandboxedEnvironment

from nudge.core.dsl.conditions import condition_key
from nudge.core.dsl.problems import DefinitionProblem, did_you_mean
from nudge.core.dsl.spec import (
    LAYOUT_CONTENT_VARIABLE,
    All,
    AnyOf,
    Condition,
    Content,
    InSegment,
    Journey,
    Layout,
    MessageCondition,
    Not,
    Origin,
    Performed,
    PropertyFilter,
    Subscription,
    Template,
    TriggerRef,
)
from nudge.core.dsl.steps.registry import step_kind
from nudge.core.dsl.triggers.registry import trigger_kind
from nudge.core.dsl.walk import (
    iter_steps,
    journey_conditions,
    segment_dependencies,
    walk_conditions,
)

# What each channel's template must have: every group needs at least one of its fields.
REQUIRED_FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "email": (("subject",), ("html",)),
    "sms": (("body",),),
    "push": (("title",), ("body",)),
    "webhook": (("url",),),
    "slack": (("text", "blocks"),),
    "in_app": (("title", "body"),),
}


def check_content(
    content: Content,
    *,
    sql_segments: Collection[str] = (),
    also_known: Collection[tuple[str, str]] = (),
) -> list[DefinitionProblem]:
    """Every cross-reference problem in ``content``.

    ``sql_segments`` names the hand-written dbt SQL segment models. ``also_known`` holds
    ``(kind, name)`` pairs of definitions that exist but failed to parse (their own problems are
    reported elsewhere), so references to them are not reported again as unknown.
    """
    known = KnownNames(content, sql_segments, also_known)
    problems: list[DefinitionProblem] = []
    for segment in content.segments:
        if segment.condition is not None:
            problems += known.condition_problems(segment.origin, "condition", segment.condition)
            problems += _entry_scope_problems(segment.origin, "condition", segment.condition, None)
    problems += _cycles(content)
    for journey in content.journeys:
        problems += _journey_problems(journey, known)
    for template in content.templates:
        problems += _template_problems(template, known)
    for layout in content.layouts:
        problems += _layout_problems(layout)
    return problems


def segment_build_order(content: Content) -> list[str]:
    """YAML segment names, each after the segments it reads (ties in definition order).

    Raises ``ValueError`` on an ``in_segment`` cycle (``check_content`` reports those).
    """
    by_name = {s.name: s for s in content.segments}
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = [*trail[trail.index(name) :], name]
            raise ValueError(f"in_segment cycle: {' -> '.join(cycle)}")
        state[name] = "visiting"
        for dependency in sorted(segment_dependencies(by_name[name])):
            if dependency in by_name:
                visit(dependency, [*trail, name])
        state[name] = "done"
        order.append(name)

    for segment in content.segments:
        visit(segment.name, [])
    return order


_LISTED = 12  # known names listed in an "unknown name" message before it is cut short


class KnownNames:
    """The names a reference may point at."""

    def __init__(
        self,
        content: Content,
        sql_segments: Collection[str],
        also_known: Collection[tuple[str, str]],
    ) -> None:
        extra = set(also_known)

        def names(kind: str, defined: Any) -> list[str]:
            return sorted({d.name for d in defined} | {n for k, n in extra if k == kind})

        self.segments = sorted({*names("segment", content.segments), *sql_segments})
        self.journeys = names("journey", content.journeys)
        self.templates = names("template", content.templates)
        self.topics = names("topic", content.topics)
        self.layouts = names("layout", content.layouts)
        self.template_channels = {t.name: t.channel for t in content.templates}
        self.topic_channels = {t.name: t.channels for t in content.topics if t.channels}

    def unknown(self, kind: str, name: str, options: list[str]) -> str | None:
        if name in options:
            return None
        if not options:
            known = "none are defined"
        elif len(options) > _LISTED:
            known = f"{', '.join(options[:_LISTED])}, ... {len(options)} in all"
        else:
            known = ", ".join(options)
        return f"unknown {kind} '{name}' (known: {known}){did_you_mean(name, options)}"

    def undeclared_topic(self, topic: str) -> str | None:
        """The problem with a send's or a ``subscription`` condition's topic, if any (a run
        refuses an undeclared topic, so validation must too)."""
        if topic in self.topics:
            return None
        declared = ", ".join(self.topics) or "none are declared"
        return (
            f"undeclared topic '{topic}' (declared: {declared}){did_you_mean(topic, self.topics)}; "
            "declare it under topics: [{name, default}]"
        )

    def condition_problems(
        self, origin: Origin, path: str, condition: Condition | None
    ) -> Iterator[DefinitionProblem]:
        if condition is None:  # only in definitions whose own problems are already reported
            return
        for at, part in _with_paths(condition, path):
            message = None
            if isinstance(part, InSegment):
                message = self.unknown("segment", part.segment, self.segments)
            elif isinstance(part, MessageCondition):
                if part.journey is not None:
                    message = self.unknown("journey", part.journey, self.journeys)
                if message is None and part.template is not None:
                    message = self.unknown("template", part.template, self.templates)
            elif isinstance(part, Subscription):
                message = self.undeclared_topic(part.topic)
                at = f"{at}.topic"
            if message:
                yield DefinitionProblem(origin.file, origin.item, at, message)


def _with_paths(condition: Condition, path: str) -> Iterator[tuple[str, Condition]]:
    """The leaves of ``condition`` (not ``all``/``any``/``not``), each with its field path ending
    in its own key (``condition.all[1].in_segment``)."""
    for at, part in walk_conditions(condition, path):
        if not isinstance(part, All | AnyOf | Not):
            yield f"{at}.{condition_key(part)}", part


def _entry_scope_problems(
    origin: Origin, path: str, condition: Condition | None, journey: Journey | None
) -> Iterator[DefinitionProblem]:
    """``since`` and ``{trigger: ...}`` outside a journey (``journey`` None), and
    ``{trigger: ...}`` in a journey without an event trigger (``docs/journeys-keyed.md``)."""
    if condition is None:
        return
    for at, part in _with_paths(condition, path):
        if not isinstance(part, Performed):
            continue
        if journey is None and part.since is not None:
            yield DefinitionProblem(
                origin.file,
                origin.item,
                f"{at}.since",
                "since counts from a journey entry, so it is allowed only in a journey's "
                "conditions; use within for a time window",
            )
        for ref_at, ref in _trigger_refs(part.where, f"{at}.where"):
            if journey is None:
                message = (
                    f"{ref} compares with the event that started a journey entry, so it is "
                    "allowed only in a journey's conditions; compare with a literal value"
                )
            elif journey.trigger is not None and not trigger_kind(journey.trigger).carries_event:
                kind = trigger_kind(journey.trigger).key
                message = (
                    f"{ref} compares with the triggering event, but journey '{journey.name}' has "
                    f"a {kind} trigger; use an event trigger or compare with a literal value"
                )
            else:
                continue
            yield DefinitionProblem(origin.file, origin.item, ref_at, message)


def _trigger_refs(where: tuple[PropertyFilter, ...], path: str) -> Iterator[tuple[str, TriggerRef]]:
    """Every ``{trigger: ...}`` operand of ``where`` with its field path (``where[0].eq``)."""
    for i, item in enumerate(where):
        if isinstance(item.comparison.value, TriggerRef):
            yield f"{path}[{i}].{item.comparison.op}", item.comparison.value


def _cycles(content: Content) -> list[DefinitionProblem]:
    """One problem per ``in_segment`` cycle, naming it ``a -> b -> a``."""
    by_name = {s.name: s for s in content.segments}
    graph = {name: sorted(segment_dependencies(s) & by_name.keys()) for name, s in by_name.items()}
    problems: list[DefinitionProblem] = []
    reported: set[frozenset[str]] = set()
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "visiting"
        for dependency in graph[name]:
            if state.get(dependency) == "visiting":
                chain = [*trail, name]
                cycle = [*chain[chain.index(dependency) :], dependency]
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    origin = by_name[dependency].origin
                    problems.append(
                        DefinitionProblem(
                            origin.file,
                            origin.item,
                            "condition",
                            f"in_segment cycle: {' -> '.join(cycle)}; a segment cannot depend on itself",
                        )
                    )
            elif dependency not in state:
                visit(dependency, [*trail, name])
        state[name] = "done"

    for name in by_name:
        if name not in state:
            visit(name, [])
    return problems


def _journey_problems(journey: Journey, known: KnownNames) -> Iterator[DefinitionProblem]:
    origin = journey.origin

    def problem(path: str, message: str) -> DefinitionProblem:
        return DefinitionProblem(origin.file, origin.item, path, message)

    trigger = journey.trigger
    kind = None if trigger is None else trigger_kind(trigger)
    if kind is not None:
        for suffix, segment in kind.segments(trigger):
            message = known.unknown("segment", segment, known.segments)
            if message:
                yield problem(f"trigger.{kind.key}{suffix}", message)
    for path, condition in journey_conditions(journey):
        yield from known.condition_problems(origin, path, condition)
        yield from _entry_scope_problems(origin, path, condition, journey)
    if kind is not None:
        for suffix, message in kind.problems(trigger):
            yield problem(f"trigger.{kind.key}{suffix}", message)
    seen: dict[str, str] = {}
    for path, step in iter_steps(journey.steps):
        if step.id is None:  # a step that did not parse; its problems are already reported
            continue
        if step.id in seen:
            yield problem(
                f"{path}.id",
                f"step id '{step.id}' is already used at {seen[step.id]}; step ids must be unique within a journey",
            )
        else:
            seen[step.id] = path
        if step.action is not None:
            step_of = step_kind(step.action)
            for suffix, message in step_of.problems(step.action, known):
                yield problem(f"{path}.{step_of.key}{suffix}", message)


_JINJA = SandboxedEnvironment()


def _template_problems(template: Template, known: KnownNames) -> Iterator[DefinitionProblem]:
    origin = template.origin
    if template.layout is not None:
        message = known.unknown("layout", template.layout, known.layouts)
        if message:
            yield DefinitionProblem(origin.file, origin.item, "layout", message)

    for group in REQUIRED_FIELDS[template.channel]:
        if not any(template.fields.get(name) not in (None, "") for name in group):
            hint = next(
                (
                    f" (is '{key}' a misspelling of '{close[0]}'?)"
                    for key in template.fields
                    if (close := difflib.get_close_matches(str(key), group, n=1, cutoff=0.6))
                ),
                "",
            )
            need = " or ".join(group)
            yield DefinitionProblem(
                origin.file,
                origin.item,
                group[0],
                f"missing; {template.channel} templates need {need}{hint}",
            )
    for path, source in _strings(template.fields, ""):
        try:
            _JINJA.parse(source)
        except TemplateSyntaxError as error:
            yield DefinitionProblem(
                origin.file,
                origin.item,
                path,
                f"template does not parse: {error.message} (line {error.lineno})",
            )


def _layout_problems(layout: Layout) -> Iterator[DefinitionProblem]:
    """A layout's html must parse and write ``{{ content }}``, where the template's html goes."""
    origin = layout.origin
    try:
        tree = _JINJA.parse(layout.html)
    except TemplateSyntaxError as error:
        yield DefinitionProblem(
            origin.file,
            origin.item,
            "html",
            f"template does not parse: {error.message} (line {error.lineno})",
        )
        return
    written = (
        name.name == LAYOUT_CONTENT_VARIABLE
        for output in tree.find_all(nodes.Output)
        for name in output.find_all(nodes.Name)
    )
    if not any(written):
        yield DefinitionProblem(
            origin.file,
            origin.item,
            "html",
            f"has no {{{{ {LAYOUT_CONTENT_VARIABLE} }}}}; write it where the template's html goes",
        )


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string in a template's fields (nested ``json``/``data`` included) with its path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{path}[{i}]")
