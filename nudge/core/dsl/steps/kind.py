"""What the definitions need to know about a step kind: its YAML key, its dataclass, how it
parses, what it nests, what it refers to, and how it reads in words."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from nudge.core.dsl.reader import Reader
from nudge.core.dsl.spec import Condition, Step

if TYPE_CHECKING:
    from nudge.core.dsl.checks import KnownNames


class ParseSteps(Protocol):
    """``nudge.core.dsl.journeys.parse_steps``, handed to the kinds that nest steps."""

    def __call__(self, r: Reader, value: Any, path: str) -> tuple[Step, ...] | None: ...


def _nothing(*_: Any) -> tuple[()]:
    return ()


@dataclass(frozen=True)
class StepKind:
    """One step kind. Field paths returned by ``nested``, ``conditions`` and ``problems`` are
    relative to the kind's key (``.then``, ``.condition``, ``[0].steps``; ``""`` for the key
    itself)."""

    key: str
    action: type
    # (reader, the value under the key, its field path, parse_steps) -> the action, or None after
    # recording what is wrong.
    parse: Callable[[Reader, Any, str, ParseSteps], Any]
    # The action in words, as ``nudge explain`` shows it ("waits 2d").
    words: Callable[[Any], str]
    # The step lists nested in the action, in program order, each with its relative path.
    nested: Callable[[Any], tuple[tuple[str, tuple[Step, ...]], ...]] = _nothing
    # The conditions the action judges, each with its relative path.
    conditions: Callable[[Any], tuple[tuple[str, Condition], ...]] = _nothing
    # Problems across definitions (unknown names, percents), each as (relative path, message).
    problems: Callable[[Any, KnownNames], Iterator[tuple[str, str]]] = _nothing
