"""Reading raw YAML values into typed values, recording a problem (never raising) when one is wrong.

Every ``Reader`` method returns ``None`` when the value is invalid, after recording a
``DefinitionProblem`` that names the file, the item, the field path and what was expected, so that
one pass over a file reports every problem in it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nudge.core.clock import to_utc_aware
from nudge.core.dsl.durations import EXPECTED as DURATION_EXPECTED
from nudge.core.dsl.durations import parse_duration
from nudge.core.dsl.problems import DefinitionProblem, did_you_mean, one_of

NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
# Names read inside JSON documents (trait names, property path parts): letters, digits and a few
# separators. Quotes, brackets, backslashes and braces are refused: every warehouse dialect puts
# such a name inside a string literal or a JSON path, and some paths have no escapes.
KEY_NAME_PATTERN = re.compile(r"[A-Za-z0-9_$@][A-Za-z0-9_$@ .:+-]{0,127}")
KEY_NAME_RULE = (
    "use letters, digits, '_', '$', '@', space, '.', ':', '+' or '-' (not first), "
    "at most 128 characters"
)
_TIME_OF_DAY = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


def sub(path: str, key: str | int) -> str:
    """The path of ``key`` (a mapping key or a list index) below ``path``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def describe(value: object) -> str:
    """A short description of a raw YAML value for error messages."""
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


@dataclass
class Reader:
    """Collects problems for one item (``segment 'x'``) of one file."""

    file: str
    item: str
    problems: list[DefinitionProblem]
    relative_to: datetime | None = None  # scenario start, for times written "+<duration>"

    def problem(self, path: str, message: str) -> None:
        self.problems.append(DefinitionProblem(self.file, self.item, path, message))

    @property
    def problem_count(self) -> int:
        return len(self.problems)

    # --- structure ------------------------------------------------------------------------------

    def mapping(
        self,
        value: Any,
        path: str,
        *,
        required: Collection[str] = (),
        optional: Collection[str] = (),
        what: str = "key",
    ) -> Mapping[str, Any] | None:
        """``value`` as a mapping with only the given keys and every required one, else None."""
        allowed = list(dict.fromkeys([*required, *optional]))
        if not isinstance(value, Mapping):
            self.problem(
                path, f"expected a mapping with keys {', '.join(allowed)}; got {describe(value)}"
            )
            return None
        ok = True
        for key in value:
            if key not in allowed:
                ok = False
                self.problem(
                    path, f"unknown {what} '{key}'; {one_of(allowed)}{did_you_mean(key, allowed)}"
                )
        for key in required:
            if key not in value:
                ok = False
                self.problem(sub(path, key), "missing; this field is required")
        return value if ok else None

    def single_key(
        self, value: Any, path: str, options: Collection[str], what: str
    ) -> tuple[str, Any] | None:
        """A mapping with exactly one key out of ``options`` (a condition, a trigger, ...)."""
        if not isinstance(value, Mapping) or len(value) != 1:
            got = f"{len(value)} keys" if isinstance(value, Mapping) else describe(value)
            self.problem(
                path,
                f"expected a {what}: a mapping with exactly one key, {one_of(options)}; got {got}",
            )
            return None
        ((key, inner),) = value.items()
        if key not in options:
            self.problem(
                path, f"unknown {what} '{key}'; {one_of(options)}{did_you_mean(key, options)}"
            )
            return None
        return key, inner

    def list_of(self, value: Any, path: str, what: str) -> list[Any] | None:
        if not isinstance(value, list):
            self.problem(path, f"expected a list of {what}; got {describe(value)}")
            return None
        return value

    # --- scalars --------------------------------------------------------------------------------

    def string(self, value: Any, path: str) -> str | None:
        if not isinstance(value, str) or not value:
            self.problem(path, f"expected a non-empty string; got {describe(value)}")
            return None
        return value

    def name(self, value: Any, path: str, what: str = "name") -> str | None:
        """A definition's or a step's name: ``[a-z][a-z0-9_]*``."""
        text = self.string(value, path)
        if text is not None and not NAME_PATTERN.fullmatch(text):
            self.problem(
                path,
                f"{what} {text!r} is not valid; names are lowercase letters, digits and _, "
                "starting with a letter ([a-z][a-z0-9_]*)",
            )
            return None
        return text

    def key_name(self, value: Any, path: str, what: str) -> str | None:
        """A name looked up inside JSON (a trait name, a property path part)."""
        text = self.string(value, path)
        if text is not None and not KEY_NAME_PATTERN.fullmatch(text):
            self.problem(path, f"{what} {text!r} is not allowed: {KEY_NAME_RULE}")
            return None
        return text

    def boolean(self, value: Any, path: str) -> bool | None:
        if not isinstance(value, bool):
            self.problem(path, f"expected true or false; got {describe(value)}")
            return None
        return value

    def true(self, value: Any, path: str) -> bool | None:
        if value is not True:
            self.problem(path, f"expected true; got {describe(value)}")
            return None
        return True

    def number(
        self, value: Any, path: str, *, low: float | None = None, high: float | None = None
    ) -> float | int | None:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok and ((low is not None and value < low) or (high is not None and value > high)):
            ok = False
        if not ok:
            bounds = f" from {low:g} to {high:g}" if low is not None and high is not None else ""
            bounds = bounds or (f" >= {low:g}" if low is not None else "")
            self.problem(path, f"expected a number{bounds}; got {describe(value)}")
            return None
        return value

    def count(self, value: Any, path: str) -> int | None:
        """A non-negative integer."""
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            self.problem(path, f"expected a non-negative integer; got {describe(value)}")
            return None
        return value

    def choice(self, value: Any, path: str, options: Collection[str], what: str) -> str | None:
        if value not in options or not isinstance(value, str):
            self.problem(
                path,
                f"unknown {what} {describe(value)}; {one_of(options)}{did_you_mean(value, options)}",
            )
            return None
        return value

    # --- time -----------------------------------------------------------------------------------

    def duration(self, value: Any, path: str) -> timedelta | None:
        try:
            return parse_duration(value)
        except ValueError:
            self.problem(path, f"{describe(value)} is not a duration; {DURATION_EXPECTED}")
            return None

    def signed_duration(self, value: Any, path: str) -> timedelta | None:
        """A duration optionally prefixed with ``-`` (before) or ``+`` (after)."""
        if isinstance(value, str) and value[:1] in ("+", "-"):
            sign = -1 if value[0] == "-" else 1
            try:
                return sign * parse_duration(value[1:])
            except ValueError:
                pass
        else:
            try:
                return parse_duration(value)
            except ValueError:
                pass
        self.problem(
            path,
            f"{describe(value)} is not an offset; expected a duration optionally prefixed with - "
            "(before) or + (after), e.g. -3d, 12h, +1d12h",
        )
        return None

    def time_of_day(self, value: Any, path: str) -> str | None:
        """``"HH:MM"`` (24-hour), normalised to two-digit hours."""
        match = _TIME_OF_DAY.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            hint = (
                " (YAML reads an unquoted 17:00 as a number; quote it)"
                if isinstance(value, int) and not isinstance(value, bool)
                else ""
            )
            self.problem(
                path, f'expected a time of day "HH:MM" (24-hour); got {describe(value)}{hint}'
            )
            return None
        return f"{int(match[1]):02d}:{match[2]}"

    def clock_window(
        self, data: Mapping[str, Any], path: str
    ) -> tuple[str | None, str | None, str | None, str | None]:
        """``from``, ``to``, ``timezone_attribute`` and ``default_timezone`` (default UTC) of a
        local clock window (quiet hours, a window step); None for each that is wrong."""
        begin = self.time_of_day(data["from"], sub(path, "from"))
        end = self.time_of_day(data["to"], sub(path, "to"))
        tz_attr = data.get("timezone_attribute")
        if tz_attr is not None:
            tz_attr = self.string(tz_attr, sub(path, "timezone_attribute"))
        default_tz = self.timezone(
            data.get("default_timezone", "UTC"), sub(path, "default_timezone")
        )
        return begin, end, tz_attr, default_tz

    def timezone(self, value: Any, path: str) -> str | None:
        text = self.string(value, path)
        if text is None:
            return None
        try:
            ZoneInfo(text)
        except (ZoneInfoNotFoundError, ValueError):
            self.problem(
                path,
                f"unknown time zone {text!r}; expected an IANA name such as UTC or Europe/Paris",
            )
            return None
        return text

    def instant(self, value: Any, path: str) -> datetime | None:
        """An ISO 8601 time as an aware UTC datetime (UTC when no offset is given).

        Within a scenario (``relative_to`` set), ``"+<duration>"`` is an offset from its start.
        """
        if isinstance(value, str) and value.startswith("+") and self.relative_to is not None:
            offset = self.duration(value[1:], path)
            return None if offset is None else to_utc_aware(self.relative_to) + offset
        if isinstance(value, datetime):
            return to_utc_aware(value)
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day, tzinfo=UTC)
        if isinstance(value, str):
            try:
                return to_utc_aware(datetime.fromisoformat(value))
            except ValueError:
                pass
        relative = ' or "+<duration>" from the scenario start' if self.relative_to else ""
        self.problem(
            path,
            f'expected an ISO 8601 time such as "2026-01-01T09:00:00Z"{relative}; got {describe(value)}',
        )
        return None
