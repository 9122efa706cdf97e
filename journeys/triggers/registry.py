"""Every trigger kind's engine side, registered once; ``tests/test_kind_registries.py`` checks
that each kind of ``nudge.core.dsl.triggers.registry`` has one."""

from __future__ import annotations

from journeys.triggers import attribute_changed, broadcast, date, event, segment
from journeys.triggers.kind import TriggerEngine

TRIGGER_ENGINES: dict[type, TriggerEngine] = {
    engine.spec: engine
    for engine in (
        segment.ENTERED,
        segment.EXITED,
        event.ENGINE,
        attribute_changed.ENGINE,
        date.ENGINE,
        broadcast.ENGINE,
    )
}


def trigger_engine(trigger: object) -> TriggerEngine:
    """The engine side of a trigger's kind (``KeyError`` naming it when unregistered)."""
    try:
        return TRIGGER_ENGINES[type(trigger)]
    except KeyError:
        raise KeyError(f"no trigger engine registered for {type(trigger).__name__}") from None
