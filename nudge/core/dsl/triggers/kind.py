"""What the definitions need to know about a trigger kind: its YAML key, its dataclass, how it
parses, which segments it reads, and how it reads in words."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from nudge.core.dsl.reader import Reader


def _nothing(*_: Any) -> tuple[()]:
    return ()


@dataclass(frozen=True)
class TriggerKind:
    """One trigger kind. Field paths are relative to the kind's key (``""`` for the key itself,
    ``.segment``)."""

    key: str
    spec: type
    # (reader, the value under the key, its field path) -> the trigger, or None after recording
    # what is wrong.
    parse: Callable[[Reader, Any, str], Any]
    # The trigger in words, as ``nudge explain`` shows it ("entering segment new_signups").
    words: Callable[[Any], str]
    # Whether an entry's trigger key is the message id of the event that started it: conditions
    # may then compare with ``{trigger: ...}`` and sends carry the event's properties.
    carries_event: bool = False
    # The segments the trigger reads, each with its relative path (for checks and lineage).
    segments: Callable[[Any], tuple[tuple[str, str], ...]] = _nothing
    # Problems within the trigger found only across definitions, as (relative path, message).
    problems: Callable[[Any], Iterator[tuple[str, str]]] = _nothing
