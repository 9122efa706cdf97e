"""Typed comparisons on a value inside a JSON document (a trait in ``traits``, a property in
``properties``), as SQL predicates that are never NULL.

The rules of ``docs/authoring.md`` ("Attribute operators"):

- values compare by type: a number equals only a number (``5`` is not ``"5"``), a boolean only a
  boolean, a string only a string; ``gt``/``gte``/``lt``/``lte`` compare numbers with numbers,
  timestamps with timestamps and strings with strings; a value of another type does not match;
- an operand string that is an ISO 8601 time (``"2026-01-01"``, ``"2026-01-01T09:00:00Z"``) makes
  ``gt``/``gte``/``lt``/``lte`` a timestamp comparison; ``eq``/``ne``/``in`` always compare strings
  as strings;
- a timestamp value is an ISO 8601 string (an offset is honoured, none means UTC) or unix seconds
  (a number; larger than year 9999 is not a timestamp, so epoch milliseconds do not match);
- a missing value (or JSON null) satisfies only ``exists: false`` and ``ne``;
- ``contains`` is a substring of a string value or an element (typed) of an array value.

Numbers compare as DOUBLE. A string is a timestamp only when it matches the strict ISO 8601 pattern
of ``nudge.core.segments.dialects`` (so every warehouse accepts the same strings). How a dialect reads
types and text out of JSON is ``nudge.core.segments.dialects``; this module only combines those
primitives.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlglot import exp

from nudge.core.clock import to_utc_naive
from nudge.core.dsl.reader import KEY_NAME_PATTERN, KEY_NAME_RULE
from nudge.core.dsl.spec import Comparison
from nudge.core.segments.dialects import (
    ISO_PATTERN,
    LEAP_DAY_PATTERN,
    MAX_UNIX_SECONDS,
    MIN_UNIX_SECONDS,
    OFFSET_PATTERN,
    JsonDialect,
    json_dialect,
)

_ORDERING = {"gt": exp.GT, "gte": exp.GTE, "lt": exp.LT, "lte": exp.LTE}


class ConditionError(ValueError):
    """A condition that cannot be compiled; the message names the condition and what is wrong."""


# The validator refuses such names with the file and field; the compiler checks again so that a
# condition built in code can never smuggle one into SQL.
NAME_PATTERN = KEY_NAME_PATTERN


def check_name(name: str, label: str) -> str:
    """``name`` when it is an allowed JSON key, else a ``ConditionError`` saying what is allowed."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ConditionError(f"{label}: name {name!r} is not allowed: {KEY_NAME_RULE}")
    return name


@dataclass(frozen=True)
class JsonValue:
    """The value at ``path`` (keys; all-digit parts index arrays) inside the JSON ``document``."""

    document: exp.Expression
    path: tuple[str, ...] = ()
    label: str = "value"  # for error messages, e.g. "attribute 'plan'"
    dialect: JsonDialect = field(default_factory=lambda: json_dialect("duckdb"))

    def __post_init__(self) -> None:
        for part in self.path:
            check_name(part, self.label)

    def text(self) -> exp.Expression:
        return self.dialect.text(self.document, self.path)

    def is_type(self, category: str) -> exp.Expression:
        """``category``: number, string, boolean or array."""
        return self.dialect.is_type(self.document, self.path, category)

    def exists(self) -> exp.Expression:
        return self.dialect.exists(self.document, self.path)

    def element(self, item: exp.Expression) -> JsonValue:
        """An element of this (array) value, as handed to ``any_element``'s predicate."""
        return JsonValue(item, (), self.label, self.dialect)

    def number(self) -> exp.Expression:
        """The value as DOUBLE when it is a JSON number, else NULL (CASE keeps the cast safe)."""
        return _case(self.is_type("number"), exp.cast(self.text(), "DOUBLE"))

    def timestamp(self) -> exp.Expression:
        """The value as a UTC TIMESTAMP when it is an ISO 8601 string or unix seconds, else NULL."""
        text = self.text()
        is_string = self.is_type("string")
        leap_year = _leap_year(
            exp.cast(
                exp.Substring(
                    this=text.copy(), start=exp.Literal.number(1), length=exp.Literal.number(4)
                ),
                "INT",
            )
        )
        iso = exp.and_(
            is_string,
            exp.paren(
                exp.or_(
                    _matches(text, ISO_PATTERN),
                    exp.and_(_matches(text, LEAP_DAY_PATTERN), exp.paren(leap_year)),
                )
            ),
        )
        seconds = self.number()
        unix = _case(
            exp.Between(
                this=seconds,
                low=exp.Literal.number(MIN_UNIX_SECONDS),
                high=exp.Literal.number(MAX_UNIX_SECONDS),
            ),
            self.dialect.unix_seconds(seconds.copy()),
        )
        return exp.Case(
            ifs=[
                exp.If(
                    this=exp.and_(iso, _matches(text, OFFSET_PATTERN)),
                    true=self.dialect.iso_with_offset(text.copy()),
                ),
                exp.If(this=iso.copy(), true=self.dialect.iso_naive(text.copy())),
            ],
            default=unix,
        )


def compile_comparison(
    value: JsonValue, comparison: Comparison, as_of: exp.Expression
) -> exp.Expression:
    """A predicate (never NULL) that holds when ``value`` satisfies ``comparison`` at ``as_of``."""
    op, operand = comparison.op, comparison.value
    if op == "exists":
        _expect(value, op, operand, bool)
        return value.exists() if operand else exp.not_(value.exists())
    if op == "ne":
        return exp.not_(_never_null(_equals(value, op, operand)))
    builder = _BUILDERS.get(op)
    if builder is None:
        raise ConditionError(f"{value.label}: unknown operator {op!r}")
    return _never_null(builder(value, op, operand, as_of))


# Operators that compare with another JSON value (a ``{trigger: ...}`` operand).
VALUE_OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "starts_with")


def compile_value_comparison(value: JsonValue, op: str, other: JsonValue) -> exp.Expression:
    """A predicate (never NULL): ``value`` satisfies ``op`` with the JSON value ``other`` as
    operand, by the rules of a literal operand of ``other``'s type (a number compares as a
    number, a string that is an ISO 8601 time orders as a timestamp, other strings as strings,
    a boolean equals only a boolean). An ``other`` that is missing, null, an array or an object
    makes the predicate false, ``ne`` included."""
    if op not in VALUE_OPERATORS:
        raise ConditionError(
            f"{value.label}: '{op}' cannot compare with another value; "
            f"use one of {', '.join(VALUE_OPERATORS)}"
        )
    if op == "eq":
        return _never_null(_values_equal(value, other))
    if op == "ne":
        scalar = exp.or_(*(other.is_type(kind) for kind in ("string", "number", "boolean")))
        return exp.and_(_never_null(scalar), exp.not_(_never_null(_values_equal(value, other))))
    if op == "starts_with":
        return _never_null(
            exp.and_(
                value.is_type("string"),
                other.is_type("string"),
                exp.StartsWith(this=value.text(), expression=other.text()),
            )
        )
    compare = _ORDERING[op]
    other_time = other.timestamp()
    ordered = exp.Case(
        ifs=[
            exp.If(
                this=other.is_type("number"),
                true=compare(this=value.number(), expression=other.number()),
            ),
            exp.If(
                this=exp.and_(
                    other.is_type("string"),
                    exp.not_(exp.Is(this=other_time, expression=exp.null())),
                ),
                true=compare(this=value.timestamp(), expression=other_time.copy()),
            ),
            exp.If(
                this=other.is_type("string"),
                true=exp.and_(
                    value.is_type("string"), compare(this=value.text(), expression=other.text())
                ),
            ),
        ],
        default=exp.false(),
    )
    return _never_null(ordered)


def _values_equal(value: JsonValue, other: JsonValue) -> exp.Expression:
    """Typed equality of two JSON values: same category (string, number, boolean) and value."""
    same = []
    for kind in ("string", "number", "boolean"):
        left, right = (
            (value.number(), other.number())
            if kind == "number"
            else (
                value.text(),
                other.text(),
            )
        )
        same.append(
            exp.paren(
                exp.and_(
                    value.is_type(kind), other.is_type(kind), exp.EQ(this=left, expression=right)
                )
            )
        )
    return exp.or_(*same)


def _equals(value: JsonValue, op: str, operand: Any) -> exp.Expression:
    """Typed equality; NULL or FALSE when the types differ or the value is missing."""
    if isinstance(operand, bool):
        return exp.and_(
            value.is_type("boolean"),
            exp.EQ(this=value.text(), expression=exp.Literal.string(str(operand).lower())),
        )
    if isinstance(operand, int | float):
        return exp.EQ(this=value.number(), expression=_number(operand))
    if isinstance(operand, str):
        return exp.and_(
            value.is_type("string"),
            exp.EQ(this=value.text(), expression=exp.Literal.string(operand)),
        )
    raise ConditionError(
        f"{value.label}: '{op}' expects a string, number or boolean; got {operand!r}"
    )


def _eq(value: JsonValue, op: str, operand: Any, as_of: exp.Expression) -> exp.Expression:
    return _equals(value, op, operand)


def _in(value: JsonValue, op: str, operand: Any, as_of: exp.Expression) -> exp.Expression:
    _expect(value, op, operand, list)
    if not operand:
        return exp.false()
    return exp.or_(*(exp.paren(_never_null(_equals(value, op, item))) for item in operand))


def _ordered(value: JsonValue, op: str, operand: Any, as_of: exp.Expression) -> exp.Expression:
    compare = _ORDERING[op]
    if isinstance(operand, bool):
        raise ConditionError(f"{value.label}: '{op}' cannot order booleans; got {operand!r}")
    if isinstance(operand, int | float):
        return compare(this=value.number(), expression=_number(operand))
    instant = _instant(operand)
    if instant is not None:
        return compare(this=value.timestamp(), expression=timestamp_literal(instant))
    if isinstance(operand, str):
        return exp.and_(
            value.is_type("string"),
            compare(this=value.text(), expression=exp.Literal.string(operand)),
        )
    raise ConditionError(
        f"{value.label}: '{op}' compares with a number, a string or a timestamp; got {operand!r}"
    )


def _contains(value: JsonValue, op: str, operand: Any, as_of: exp.Expression) -> exp.Expression:
    in_array = value.dialect.any_element(
        value.document,
        value.path,
        lambda item: _never_null(_equals(value.element(item), op, operand)),
    )
    if not isinstance(operand, str):
        return in_array
    substring = exp.and_(
        value.is_type("string"),
        exp.GT(
            this=exp.StrPosition(this=value.text(), substr=exp.Literal.string(operand)),
            expression=exp.Literal.number(0),
        ),
    )
    return exp.or_(exp.paren(_never_null(substring)), in_array)


def _starts_with(value: JsonValue, op: str, operand: Any, as_of: exp.Expression) -> exp.Expression:
    _expect(value, op, operand, str)
    return exp.and_(
        value.is_type("string"),
        exp.StartsWith(this=value.text(), expression=exp.Literal.string(operand)),
    )


def _relative(value: JsonValue, op: str, operand: Any, as_of: exp.Expression) -> exp.Expression:
    _expect(value, op, operand, timedelta)
    if operand < timedelta(0):
        raise ConditionError(f"{value.label}: '{op}' needs a positive duration; got {operand}")
    t = value.timestamp()
    if op == "newer_than":  # as_of - d <= t <= as_of
        return exp.Between(this=t, low=minus(as_of, operand), high=as_of.copy())
    if op == "older_than":  # t <= as_of - d
        return exp.LTE(this=t, expression=minus(as_of, operand))
    return exp.Between(this=t, low=as_of.copy(), high=plus(as_of, operand))  # within_next


TIME_RELATIVE_OPERATORS = frozenset({"newer_than", "older_than", "within_next"})


def flip_offsets(comparison: Comparison) -> list[timedelta]:
    """Offsets ``c`` such that a time-relative comparison of a timestamp ``t`` can change its
    result only when ``as_of`` passes ``t + c``: it holds for as_of in one closed interval,
    ``[t, t + d]`` for ``newer_than``, ``[t + d, ...)`` for ``older_than``, ``[t - d, t]`` for
    ``within_next``."""
    op, duration = comparison.op, comparison.value
    if op not in TIME_RELATIVE_OPERATORS or not isinstance(duration, timedelta):
        raise ConditionError(f"{op!r} with {duration!r} does not move with time")
    if op == "newer_than":
        return [timedelta(0), duration]
    if op == "older_than":
        return [duration]
    return [-duration, timedelta(0)]


def _absolute(value: JsonValue, op: str, operand: Any, as_of: exp.Expression) -> exp.Expression:
    instant = _instant(operand)
    if instant is None:
        raise ConditionError(f"{value.label}: '{op}' expects an ISO 8601 time; got {operand!r}")
    compare = exp.LT if op == "before" else exp.GT
    return compare(this=value.timestamp(), expression=timestamp_literal(instant))


_Builder = Callable[[JsonValue, str, Any, exp.Expression], exp.Expression]
_BUILDERS: dict[str, _Builder] = {
    "eq": _eq,
    "in": _in,
    "gt": _ordered,
    "gte": _ordered,
    "lt": _ordered,
    "lte": _ordered,
    "contains": _contains,
    "starts_with": _starts_with,
    "newer_than": _relative,
    "older_than": _relative,
    "within_next": _relative,
    "before": _absolute,
    "after": _absolute,
}


# --- small SQL helpers, shared with the compiler ---------------------------------------------------


def timestamp_literal(moment: datetime) -> exp.Expression:
    """``CAST('YYYY-MM-DD HH:MM:SS[.ffffff]' AS TIMESTAMP)`` of ``moment`` in UTC (naive = UTC)."""
    return exp.cast(exp.Literal.string(to_utc_naive(moment).isoformat(sep=" ")), "TIMESTAMP")


def interval(duration: timedelta) -> exp.Interval:
    """``INTERVAL 'n' UNIT`` in the largest unit that divides ``duration`` exactly."""
    seconds = int(duration.total_seconds())
    if seconds != duration.total_seconds():
        raise ConditionError(f"durations are whole seconds; got {duration}")
    for unit, size in (("DAY", 86400), ("HOUR", 3600), ("MINUTE", 60)):
        if seconds % size == 0 and seconds:
            return exp.Interval(this=exp.Literal.string(str(seconds // size)), unit=exp.var(unit))
    return exp.Interval(this=exp.Literal.string(str(seconds)), unit=exp.var("SECOND"))


def minus(as_of: exp.Expression, duration: timedelta) -> exp.Expression:
    return exp.Sub(this=as_of.copy(), expression=interval(duration))


def plus(as_of: exp.Expression, duration: timedelta) -> exp.Expression:
    return exp.Add(this=as_of.copy(), expression=interval(duration))


def _never_null(predicate: exp.Expression) -> exp.Expression:
    return exp.Coalesce(this=predicate, expressions=[exp.false()])


def _matches(text: exp.Expression, pattern: str) -> exp.Expression:
    return exp.RegexpLike(this=text.copy(), expression=exp.Literal.string(pattern))


def _leap_year(year: exp.Expression) -> exp.Expression:
    def divisible(by: int) -> exp.Expression:
        return exp.EQ(
            this=exp.Mod(this=year.copy(), expression=exp.Literal.number(by)),
            expression=exp.Literal.number(0),
        )

    return exp.and_(divisible(4), exp.paren(exp.or_(exp.not_(divisible(100)), divisible(400))))


def _case(condition: exp.Expression, then: exp.Expression) -> exp.Expression:
    return exp.Case(ifs=[exp.If(this=condition, true=then)])


def _number(operand: int | float) -> exp.Expression:
    if operand != operand or operand in (float("inf"), float("-inf")):
        raise ConditionError(f"{operand!r} is not a usable number")
    return exp.Literal.number(repr(operand) if isinstance(operand, float) else operand)


def _instant(operand: Any) -> datetime | None:
    """``operand`` as a datetime when it is one, a date, or an ISO 8601 time string; else None."""
    if isinstance(operand, datetime):
        return operand
    if isinstance(operand, date):
        return datetime(operand.year, operand.month, operand.day)
    if isinstance(operand, str) and re.fullmatch(r"\d{4}-\d\d-\d\d([T ].*)?", operand):
        try:
            return datetime.fromisoformat(operand)
        except ValueError:
            return None
    return None


def _expect(value: JsonValue, op: str, operand: Any, kind: type) -> None:
    if not isinstance(operand, kind) or (kind is not bool and isinstance(operand, bool)):
        raise ConditionError(f"{value.label}: '{op}' expects a {kind.__name__}; got {operand!r}")
