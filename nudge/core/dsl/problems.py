"""Problems found in definitions, each naming the file, the item and the field it concerns."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class DefinitionProblem:
    """One thing wrong with a definition.

    ``str()`` reads like ``content/segments.yml: segment 'lapsed_buyers': condition.all[1].attribute:
    unknown operator 'gtt'; expected one of eq, ne, ... (did you mean 'gt'?)``.
    """

    file: str
    item: str
    field: str
    message: str

    def __str__(self) -> str:
        return ": ".join(part for part in (self.file, self.item, self.field, self.message) if part)


class DefinitionError(Exception):
    """Definitions that cannot be used; ``problems`` holds every problem found, not just the first."""

    def __init__(self, problems: Iterable[DefinitionProblem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        heading = f"{count} problem{'s' if count != 1 else ''} in definitions:"
        super().__init__("\n".join([heading, *(str(p) for p in self.problems)]))


def did_you_mean(word: object, options: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest option to ``word``, or an empty string."""
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def one_of(options: Iterable[str]) -> str:
    return "expected one of " + ", ".join(options)
