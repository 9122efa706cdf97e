"""``broadcast``: every member of a segment, once (at a given time, or at the first run)."""

from __future__ import annotations

from typing import Any

from nudge.core.dsl.reader import Reader, sub
from nudge.core.dsl.spec import Broadcast
from nudge.core.dsl.triggers.kind import TriggerKind


def parse(r: Reader, value: Any, path: str) -> Broadcast | None:
    start = r.problem_count
    data = r.mapping(value, path, required=("segment",), optional=("at",))
    if data is None:
        return None
    segment = r.string(data["segment"], sub(path, "segment"))
    moment = r.instant(data["at"], sub(path, "at")) if "at" in data else None
    if r.problem_count > start or segment is None:
        return None
    return Broadcast(segment, moment)


def words(trigger: Broadcast) -> str:
    when = f"at {trigger.at.isoformat()}" if trigger.at else "at the first run"
    return f"a broadcast to segment {trigger.segment} {when}"


def segments(trigger: Broadcast) -> tuple[tuple[str, str], ...]:
    return ((".segment", trigger.segment),)


KIND = TriggerKind("broadcast", Broadcast, parse, words, segments=segments)
