"""Typed comparisons on a value inside a JSON document (a trait in ``traits``, a property in
``properties``), as SQL predicates that are never NULL.

The rules of dsl.md "Segment conditions":

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

Numbers compare as DOUBLE. The JSON type comes from DuckDB's ``JSON_TYPE``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlglot import exp

from nudge.dsl.models import Comparison

NUMBER_TYPES = ("BIGINT", "UBIGINT", "DOUBLE")
# Unix seconds of 9999-12-31T23:59:59Z: larger numbers are not timestamps.
MAX_UNIX_SECONDS = 253402300799
# An ISO 8601 time of day followed by an explicit offset; strings without one are UTC.
_OFFSET_PATTERN = r"\d:\d\d(:\d\d(\.\d+)?)?\s*([Zz]|[+-]\d\d(:?\d\d)?)$"

_ORDERING = {"gt": exp.GT, "gte": exp.GTE, "lt": exp.LT, "lte": exp.LTE}


class ConditionError(ValueError):
    """A condition that cannot be compiled; the message names the condition and what is wrong."""


@dataclass(frozen=True)
class JsonValue:
    """The value at ``path`` (keys; all-digit parts index arrays) inside the JSON ``document``."""

    document: exp.Expression
    path: tuple[str, ...] = ()
    label: str = "value"  # for error messages, e.g. "attribute 'plan'"

    def _json_path(self) -> exp.JSONPath:
        parts: list[exp.Expression] = [exp.JSONPathRoot()]
        for part in self.path:
            if not part or "\\" in part or any(ord(c) < 32 for c in part):
                raise ConditionError(
                    f"{self.label}: name {part!r} is not usable (empty, or has a backslash or a "
                    "control character)"
                )
            parts.append(
                exp.JSONPathSubscript(this=int(part))
                if part.isdigit()
                else exp.JSONPathKey(this=part)
            )
        return exp.JSONPath(expressions=parts)

    def json_type(self) -> exp.Expression:
        return exp.JSONType(this=self.document.copy(), expression=self._json_path())

    def text(self) -> exp.Expression:
        return exp.JSONExtractScalar(this=self.document.copy(), expression=self._json_path())

    def elements(self) -> exp.Expression:
        """The elements of an array value as a list of JSON values, else NULL (no elements)."""
        array = exp.JSONExtract(this=self.document.copy(), expression=self._json_path())
        return _case(
            self.is_type("ARRAY"), exp.cast(array, exp.DataType.build("JSON[]", dialect="duckdb"))
        )

    def is_type(self, *types: str) -> exp.Expression:
        kind = self.json_type()
        if len(types) == 1:
            return exp.EQ(this=kind, expression=exp.Literal.string(types[0]))
        return exp.In(this=kind, expressions=[exp.Literal.string(t) for t in types])

    def exists(self) -> exp.Expression:
        return exp.NEQ(
            this=exp.Coalesce(this=self.json_type(), expressions=[exp.Literal.string("NULL")]),
            expression=exp.Literal.string("NULL"),
        )

    def number(self) -> exp.Expression:
        """The value as DOUBLE when it is a JSON number, else NULL (CASE keeps the cast safe)."""
        return _case(self.is_type(*NUMBER_TYPES), exp.cast(self.text(), "DOUBLE"))

    def timestamp(self) -> exp.Expression:
        """The value as a UTC TIMESTAMP when it is an ISO 8601 string or unix seconds, else NULL."""
        text = self.text()
        is_string = self.is_type("VARCHAR")
        with_offset = exp.and_(
            is_string,
            exp.RegexpLike(this=text.copy(), expression=exp.Literal.string(_OFFSET_PATTERN)),
        )
        seconds = self.number()
        unix = _case(
            exp.LTE(this=exp.Abs(this=seconds), expression=exp.Literal.number(MAX_UNIX_SECONDS)),
            _utc(exp.UnixToTime(this=seconds.copy())),
        )
        return exp.Case(
            ifs=[
                exp.If(
                    this=with_offset,
                    true=_utc(exp.TryCast(this=text.copy(), to=exp.DataType.build("TIMESTAMPTZ"))),
                ),
                exp.If(
                    this=is_string.copy(),
                    true=exp.TryCast(this=text.copy(), to=exp.DataType.build("TIMESTAMP")),
                ),
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


def _equals(value: JsonValue, op: str, operand: Any) -> exp.Expression:
    """Typed equality; NULL or FALSE when the types differ or the value is missing."""
    if isinstance(operand, bool):
        return exp.and_(
            value.is_type("BOOLEAN"),
            exp.EQ(this=value.text(), expression=exp.Literal.string(str(operand).lower())),
        )
    if isinstance(operand, int | float):
        return exp.EQ(this=value.number(), expression=_number(operand))
    if isinstance(operand, str):
        return exp.and_(
            value.is_type("VARCHAR"),
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
            value.is_type("VARCHAR"),
            compare(this=value.text(), expression=exp.Literal.string(operand)),
        )
    raise ConditionError(
        f"{value.label}: '{op}' compares with a number, a string or a timestamp; got {operand!r}"
    )


def _contains(value: JsonValue, op: str, operand: Any, as_of: exp.Expression) -> exp.Expression:
    # A lambda over the elements, not a correlated UNNEST: DuckDB decorrelates that per distinct
    # traits document, which is ten times slower.
    item = exp.to_identifier("item")
    matching = exp.ArrayFilter(
        this=value.elements(),
        expression=exp.Lambda(
            this=_never_null(
                _equals(JsonValue(exp.column(item.copy()), (), value.label), op, operand)
            ),
            expressions=[item],
        ),
    )
    in_array = exp.GT(this=exp.ArraySize(this=matching), expression=exp.Literal.number(0))
    if not isinstance(operand, str):
        return in_array
    substring = exp.and_(
        value.is_type("VARCHAR"),
        exp.GT(
            this=exp.StrPosition(this=value.text(), substr=exp.Literal.string(operand)),
            expression=exp.Literal.number(0),
        ),
    )
    return exp.or_(exp.paren(_never_null(substring)), in_array)


def _starts_with(value: JsonValue, op: str, operand: Any, as_of: exp.Expression) -> exp.Expression:
    _expect(value, op, operand, str)
    return exp.and_(
        value.is_type("VARCHAR"),
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
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return exp.cast(exp.Literal.string(moment.isoformat(sep=" ")), "TIMESTAMP")


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


def _case(condition: exp.Expression, then: exp.Expression) -> exp.Expression:
    return exp.Case(ifs=[exp.If(this=condition, true=then)])


def _utc(moment: exp.Expression) -> exp.Expression:
    """A TIMESTAMPTZ as the naive UTC TIMESTAMP (independent of the session time zone)."""
    return exp.AtTimeZone(this=moment, zone=exp.Literal.string("UTC"))


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
