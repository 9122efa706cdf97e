"""Every trigger kind, registered once: the parser, the checks, the lineage and (in ``journeys``)
the engine derive from this list. Adding a kind: its dataclass in ``nudge.core.dsl.spec``, its
module here, and its engine module in ``journeys.triggers``."""

from __future__ import annotations

from nudge.core.dsl.triggers import attribute_changed, broadcast, date, event, segment
from nudge.core.dsl.triggers.kind import TriggerKind

TRIGGER_KINDS: dict[str, TriggerKind] = {
    kind.key: kind
    for kind in (
        segment.ENTERED,
        segment.EXITED,
        event.KIND,
        attribute_changed.KIND,
        date.KIND,
        broadcast.KIND,
    )
}
_BY_SPEC = {kind.spec: kind for kind in TRIGGER_KINDS.values()}


def trigger_kind(trigger: object) -> TriggerKind:
    """The registered kind of a journey's trigger (``KeyError`` naming it when unregistered)."""
    try:
        return _BY_SPEC[type(trigger)]
    except KeyError:
        raise KeyError(f"no trigger kind registered for {type(trigger).__name__}") from None
