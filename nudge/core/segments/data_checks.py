"""Warnings about names in definitions that the data has never seen (``nudge validate``).

Definitions can be valid and still wrong: ``performed: {event: order_complete}`` compiles, and
matches nobody, because the product sends ``order_completed``. When the workspace has a warehouse
with landed events, every ``performed`` event (and ``event`` trigger), every ``where`` property
and every ``attribute`` trait is looked up in ``raw.events`` (all data ever loaded, whatever the
as_of), and each one never seen is a warning, not an error, with a "did you mean" among the
names that were seen. Only the first part of a dotted ``where`` path is checked (the top-level
property keys of that event). Nothing is checked when no warehouse exists or it holds no events.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from nudge.core.dsl.problems import did_you_mean
from nudge.core.dsl.spec import (
    Attribute,
    Condition,
    Content,
    EventTrigger,
    Origin,
    Performed,
    PropertyFilter,
)
from nudge.core.dsl.walk import journey_conditions, walk_conditions
from nudge.core.warehouse.connection import connect, warehouse_exists
from nudge.core.workspace import Workspace


@dataclass(frozen=True)
class DataWarning:
    file: str
    item: str
    field: str
    message: str

    def __str__(self) -> str:
        return "warning: " + ": ".join(
            p for p in (self.file, self.item, self.field, self.message) if p
        )


@dataclass(frozen=True)
class SeenNames:
    """Names the loaded data contains: track event names, their top-level property keys, traits."""

    events: frozenset[str]
    properties: dict[str, frozenset[str]]
    traits: frozenset[str]

    @classmethod
    def read(cls, con: duckdb.DuckDBPyConnection) -> SeenNames:
        events = con.execute(
            "select distinct event from raw.events where type = 'track' and event is not null"
        ).fetchall()
        properties: dict[str, set[str]] = {}
        for event, key in con.execute(
            """select distinct event, unnest(json_keys(properties))
               from raw.events
               where type = 'track' and event is not null and json_type(properties) = 'OBJECT'"""
        ).fetchall():
            properties.setdefault(event, set()).add(key)
        traits = con.execute(
            """select distinct unnest(json_keys(traits)) from raw.events
               where type = 'identify' and json_type(traits) = 'OBJECT'"""
        ).fetchall()
        return cls(
            events=frozenset(e for (e,) in events),
            properties={e: frozenset(keys) for e, keys in properties.items()},
            traits=frozenset(t for (t,) in traits),
        )


class _Checker:
    def __init__(self, seen: SeenNames) -> None:
        self.seen = seen
        self.warnings: list[DataWarning] = []

    def warn(self, origin: Origin, field: str, message: str) -> None:
        self.warnings.append(DataWarning(origin.file, origin.item, field, message))

    def event(self, origin: Origin, field: str, name: str) -> bool:
        if name in self.seen.events:
            return True
        self.warn(
            origin,
            field,
            f"event {name!r} never seen in the data{did_you_mean(name, self.seen.events)}",
        )
        return False

    def where(
        self, origin: Origin, field: str, event: str, items: tuple[PropertyFilter, ...]
    ) -> None:
        keys = self.seen.properties.get(event, frozenset())
        for i, item in enumerate(items):
            top = item.path[0]
            if top not in keys:
                self.warn(
                    origin,
                    f"{field}[{i}].property",
                    f"property {top!r} never seen on event {event!r}{did_you_mean(top, keys)}",
                )

    def condition(self, origin: Origin, condition: Condition, path: str) -> None:
        for at, node in walk_conditions(condition, path):
            if isinstance(node, Performed):
                if self.event(origin, f"{at}.performed.event", node.event):
                    self.where(origin, f"{at}.performed.where", node.event, node.where)
            elif isinstance(node, Attribute) and node.name not in self.seen.traits:
                self.warn(
                    origin,
                    f"{at}.attribute.name",
                    f"trait {node.name!r} never seen in the data"
                    f"{did_you_mean(node.name, self.seen.traits)}",
                )


def data_warnings(content: Content, seen: SeenNames) -> list[DataWarning]:
    """Every event, property and trait name in ``content`` that ``seen`` does not contain."""
    checker = _Checker(seen)
    for segment in content.segments:
        if segment.condition is not None:
            checker.condition(segment.origin, segment.condition, "condition")
    for journey in content.journeys:
        trigger = journey.trigger
        if isinstance(trigger, EventTrigger) and checker.event(
            journey.origin, "trigger.event.name", trigger.name
        ):
            checker.where(journey.origin, "trigger.event.where", trigger.name, trigger.where)
        for path, condition in journey_conditions(journey):
            checker.condition(journey.origin, condition, path)
    return checker.warnings


def workspace_data_warnings(workspace: Workspace, content: Content) -> list[DataWarning]:
    """``data_warnings`` against the workspace's warehouse; none without a warehouse or events."""
    if not warehouse_exists(workspace.warehouse_path):
        return []
    with connect(workspace.warehouse_path, read_only=True) as con:
        try:
            (rows,) = con.execute("select count(*) from raw.events").fetchone()
        except duckdb.CatalogException:
            return []
        if not rows:
            return []
        return data_warnings(content, SeenNames.read(con))
