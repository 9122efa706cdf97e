"""How each warehouse reads a typed value out of a JSON document: the dialect-specific primitives
of the condition compiler.

The compiler builds one sqlglot AST and renders it with ``.sql(dialect=...)``. sqlglot maps plain
SQL (CASE, CAST, COALESCE, EXISTS, intervals, MD5, STRPOS, regular expressions) correctly, but not
JSON access: transpiling DuckDB's ``JSON_TYPE``/``->>``/``TRY_CAST``/list lambdas yields functions
that do not exist elsewhere or mean something else. So every JSON primitive is built here, per
dialect, from functions that exist in that warehouse:

| primitive | duckdb (JSON) | postgres (jsonb) | snowflake (VARIANT) | bigquery (JSON) | databricks (VARIANT) |
|---|---|---|---|---|---|
| sub-value | ``JSON_TYPE(doc, '$.a')`` | ``JSONB_EXTRACT_PATH(doc, 'a')`` | ``GET(doc, 'a')`` | ``doc['a']`` | ``TRY_VARIANT_GET(doc, '$['a']', 'variant')`` |
| type | ``JSON_TYPE`` (BIGINT, DOUBLE, VARCHAR...) | ``JSONB_TYPEOF`` (number, string...) | ``TYPEOF`` (INTEGER, DECIMAL, VARCHAR...) | ``JSON_TYPE`` (number, string...) | ``SCHEMA_OF_VARIANT`` (BIGINT, DECIMAL(p,s), STRING...) |
| text | ``doc ->> '$.a'`` | ``JSONB_EXTRACT_PATH_TEXT`` | ``CAST(v AS VARCHAR)`` | ``JSON_VALUE(v)`` | ``TRY_VARIANT_GET(v, '$', 'string')`` |
| an element matches | list lambda | ``EXISTS`` over ``JSONB_ARRAY_ELEMENTS`` | ``FILTER`` lambda | ``EXISTS`` over ``UNNEST(JSON_QUERY_ARRAY(v))`` | ``FILTER`` lambda |
| ISO text -> UTC | ``TRY_CAST(.. AS TIMESTAMPTZ) AT TIME ZONE 'UTC'`` | ``CAST(.. AS TIMESTAMPTZ) AT TIME ZONE 'UTC'`` | ``CONVERT_TIMEZONE('UTC', TRY_TO_TIMESTAMP_TZ(..))`` | ``DATETIME(SAFE_CAST(.. AS TIMESTAMP), 'UTC')`` | ``TIMESTAMPADD(MICROSECOND, UNIX_MICROS(..), epoch)`` |
| unix seconds -> UTC | ``TO_TIMESTAMP(s) AT TIME ZONE 'UTC'`` | same | ``TO_TIMESTAMP_NTZ(micros, 6)`` | ``DATETIME(TIMESTAMP_MICROS(..), 'UTC')`` | ``TIMESTAMPADD(MICROSECOND, .., epoch)`` |

Differences handled so that every dialect gives the same answers:

- Types are compared as categories (number, string, boolean, array), each dialect listing its own
  type names; a missing key and JSON null are both "missing".
- Postgres has no TRY_CAST and a bad timestamp string aborts the whole query, so a string is a
  timestamp only when it matches a strict ISO 8601 pattern (real month/day ranges, 29 February
  only in leap years, optional time with up to nine fraction digits, optional ``Z``/``±hh[:mm]``
  offset, with or without a space before it); every dialect applies the
  same pattern, so DuckDB does not accept formats that Postgres would reject.
- Unix seconds are timestamps between year 1 and 9999 (Postgres rejects years before 4713 BC).
- Everything is converted to naive UTC timestamps, independent of the session time zone (the
  relations' timestamps and ``as_of`` are naive UTC).
- Regular expressions use no backslashes (Snowflake and Databricks string literals treat them as
  escapes).

Document columns are expected as: duckdb JSON, postgres jsonb, snowflake VARIANT, bigquery JSON,
databricks VARIANT. Only DuckDB and Postgres are executed by the tests; the other three are
checked by sqlglot (parse back with ``unsupported_level=RAISE``, no DuckDB-only names left).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlglot import exp

DIALECTS = ("duckdb", "postgres", "snowflake", "bigquery", "databricks")
# dbt adapters whose SQL is another adapter's dialect: Spark 4 reads VARIANT like Databricks.
ADAPTER_DIALECTS = {"spark": "databricks"}


def dispatch_aliases(macro: str) -> list[str]:
    """dbt macro lines making ``<adapter>__<macro>(value)`` the dialect's own implementation for
    each adapter of ADAPTER_DIALECTS (dbt dispatches on the adapter's name, not the dialect's)."""
    return [
        f"{{% macro {adapter}__{macro}(value) -%}}{{{{ {dialect}__{macro}(value) }}}}{{%- endmacro %}}"
        for adapter, dialect in ADAPTER_DIALECTS.items()
    ]


# Unix seconds of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z: outside, a number is no timestamp.
MIN_UNIX_SECONDS = -62135596800
MAX_UNIX_SECONDS = 253402300799

_YEAR = "([1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])"
_MONTH_DAY = (
    "((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)"
    "|02-(0[1-9]|1[0-9]|2[0-8]))"
)
# Fractions to nanoseconds (Go; .NET writes seven digits); read to the microsecond.
_TIME = "[T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9]([.][0-9]{1,9})?)?"
_ZONE = " ?(Z|z|[+-]([01][0-9]|2[0-3])(:?[0-5][0-9])?)"
ISO_PATTERN = f"^{_YEAR}-{_MONTH_DAY}({_TIME}({_ZONE})?)?$"
LEAP_DAY_PATTERN = f"^{_YEAR}-02-29({_TIME}({_ZONE})?)?$"
OFFSET_PATTERN = f"{_TIME}{_ZONE}$"

Predicate = Callable[[exp.Expression], exp.Expression]


def _fn(name: str, *args: exp.Expression) -> exp.Expression:
    return exp.Anonymous(this=name, expressions=list(args))


def _s(text: str) -> exp.Literal:
    return exp.Literal.string(text)


def _in(value: exp.Expression, names: tuple[str, ...]) -> exp.Expression:
    if len(names) == 1:
        return exp.EQ(this=value, expression=_s(names[0]))
    return exp.In(this=value, expressions=[_s(n) for n in names])


@dataclass(frozen=True)
class JsonDialect:
    """JSON primitives of one warehouse (see the module docstring)."""

    name: str
    types: dict[str, tuple[str, ...]]  # category -> the dialect's type names
    null_type: str

    # --- overridden per dialect ----------------------------------------------------------------

    def sub(self, doc: exp.Expression, path: tuple[str, ...]) -> exp.Expression:
        raise NotImplementedError

    def kind(self, doc: exp.Expression, path: tuple[str, ...]) -> exp.Expression:
        raise NotImplementedError

    def text(self, doc: exp.Expression, path: tuple[str, ...]) -> exp.Expression:
        raise NotImplementedError

    def any_element(
        self, doc: exp.Expression, path: tuple[str, ...], matches: Predicate
    ) -> exp.Expression:
        """TRUE when the value is an array with an element (a JSON value) satisfying ``matches``."""
        raise NotImplementedError

    def iso_with_offset(self, text: exp.Expression) -> exp.Expression:
        raise NotImplementedError

    def iso_naive(self, text: exp.Expression) -> exp.Expression:
        return exp.TryCast(this=text, to=exp.DataType.build("TIMESTAMP"))

    def unix_seconds(self, seconds: exp.Expression) -> exp.Expression:
        return exp.AtTimeZone(this=exp.UnixToTime(this=seconds), zone=_s("UTC"))

    # --- shared ----------------------------------------------------------------------------------

    def is_type(self, doc: exp.Expression, path: tuple[str, ...], category: str) -> exp.Expression:
        return _in(self.kind(doc, path), self.types[category])

    def exists(self, doc: exp.Expression, path: tuple[str, ...]) -> exp.Expression:
        return exp.NEQ(
            this=exp.Coalesce(this=self.kind(doc, path), expressions=[_s(self.null_type)]),
            expression=_s(self.null_type),
        )


class _DuckDB(JsonDialect):
    def _json_path(self, path: tuple[str, ...]) -> exp.JSONPath:
        parts: list[exp.Expression] = [exp.JSONPathRoot()]
        for part in path:
            parts.append(
                exp.JSONPathSubscript(this=int(part))
                if part.isdigit()
                else exp.JSONPathKey(this=part)
            )
        return exp.JSONPath(expressions=parts)

    def sub(self, doc, path):
        return exp.JSONExtract(this=doc.copy(), expression=self._json_path(path))

    def kind(self, doc, path):
        return exp.JSONType(this=doc.copy(), expression=self._json_path(path))

    def text(self, doc, path):
        return exp.JSONExtractScalar(this=doc.copy(), expression=self._json_path(path))

    def any_element(self, doc, path, matches):
        # A lambda, not a correlated UNNEST: DuckDB decorrelates that per distinct document, which
        # is ten times slower.
        item = exp.to_identifier("item")
        elements = exp.Case(
            ifs=[
                exp.If(
                    this=self.is_type(doc, path, "array"),
                    true=exp.cast(
                        self.sub(doc, path), exp.DataType.build("JSON[]", dialect="duckdb")
                    ),
                )
            ]
        )
        matching = exp.ArrayFilter(
            this=elements,
            expression=exp.Lambda(this=matches(exp.column(item.copy())), expressions=[item]),
        )
        return exp.GT(this=exp.ArraySize(this=matching), expression=exp.Literal.number(0))

    def iso_with_offset(self, text):
        # DuckDB reads no space before the zone (Ruby's `2026-04-02 10:00:00 +0000`): the only
        # other space a matching string holds is the date's separator, the 11th character.
        joined = exp.func(
            "CONCAT",
            exp.Substring(
                this=text.copy(), start=exp.Literal.number(1), length=exp.Literal.number(11)
            ),
            _fn("REPLACE", exp.Substring(this=text, start=exp.Literal.number(12)), _s(" "), _s("")),
        )
        return exp.AtTimeZone(
            this=exp.TryCast(this=joined, to=exp.DataType.build("TIMESTAMPTZ")), zone=_s("UTC")
        )


class _Postgres(JsonDialect):
    def sub(self, doc, path):
        return _fn("JSONB_EXTRACT_PATH", doc.copy(), *map(_s, path)) if path else doc.copy()

    def kind(self, doc, path):
        return _fn("JSONB_TYPEOF", self.sub(doc, path))

    def text(self, doc, path):
        if not path:
            return exp.JSONBExtractScalar(this=doc.copy(), expression=_s("{}"))
        return _fn("JSONB_EXTRACT_PATH_TEXT", doc.copy(), *map(_s, path))

    def any_element(self, doc, path, matches):
        array = exp.Case(
            ifs=[exp.If(this=self.is_type(doc, path, "array"), true=self.sub(doc, path))]
        )
        elements = exp.Table(
            this=_fn("JSONB_ARRAY_ELEMENTS", array),
            alias=exp.TableAlias(
                this=exp.to_identifier("item"), columns=[exp.to_identifier("value")]
            ),
        )
        query = (
            exp.select(exp.Literal.number(1))
            .from_(elements)
            .where(matches(exp.column("value", table="item")))
        )
        return exp.Exists(this=query)

    def iso_with_offset(self, text):
        # Safe without TRY_CAST: only strings matching ISO_PATTERN reach the cast.
        return exp.AtTimeZone(
            this=exp.cast(self._microseconds(text), "TIMESTAMPTZ"), zone=_s("UTC")
        )

    def iso_naive(self, text):
        return exp.cast(self._microseconds(text), "TIMESTAMP")

    def _microseconds(self, text: exp.Expression) -> exp.Expression:
        # Postgres rounds a fraction past microseconds, the others cut it (Go's nanoseconds).
        return _fn("REGEXP_REPLACE", text, _s("(?<=[.][0-9]{6})[0-9]+"), _s(""))


class _Snowflake(JsonDialect):
    def sub(self, doc, path):
        value = doc.copy()
        for part in path:
            key = exp.Literal.number(int(part)) if part.isdigit() else _s(part)
            value = _fn("GET", value, key)
        return value

    def kind(self, doc, path):
        return _fn("TYPEOF", self.sub(doc, path))

    def text(self, doc, path):
        return exp.cast(self.sub(doc, path), "VARCHAR")

    def any_element(self, doc, path, matches):
        item = exp.to_identifier("item")
        array = exp.Case(
            ifs=[
                exp.If(
                    this=self.is_type(doc, path, "array"),
                    true=exp.cast(self.sub(doc, path), "ARRAY"),
                )
            ]
        )
        matching = exp.ArrayFilter(
            this=array,
            expression=exp.Lambda(this=matches(exp.column(item.copy())), expressions=[item]),
        )
        return exp.GT(this=exp.ArraySize(this=matching), expression=exp.Literal.number(0))

    def iso_with_offset(self, text):
        utc = _fn("CONVERT_TIMEZONE", _s("UTC"), _fn("TRY_TO_TIMESTAMP_TZ", text))
        return exp.cast(utc, "TIMESTAMPNTZ")

    def iso_naive(self, text):
        return _fn("TRY_TO_TIMESTAMP_NTZ", text)

    def unix_seconds(self, seconds):
        micros = exp.cast(
            exp.Round(this=exp.Mul(this=seconds, expression=exp.Literal.number(1000000))),
            "BIGINT",
        )
        return _fn("TO_TIMESTAMP_NTZ", micros, exp.Literal.number(6))


class _BigQuery(JsonDialect):
    def sub(self, doc, path):
        value = doc.copy()
        for part in path:
            key = exp.Literal.number(int(part)) if part.isdigit() else _s(part)
            value = exp.Bracket(this=value, expressions=[key])
        return value

    def kind(self, doc, path):
        return _fn("JSON_TYPE", self.sub(doc, path))

    def text(self, doc, path):
        return _fn("JSON_VALUE", self.sub(doc, path))

    def any_element(self, doc, path, matches):
        elements = exp.Unnest(
            expressions=[_fn("JSON_QUERY_ARRAY", self.sub(doc, path))],
            alias=exp.TableAlias(this=exp.to_identifier("item")),
        )
        query = exp.select(exp.Literal.number(1)).from_(elements).where(matches(exp.column("item")))
        return exp.Exists(this=query)

    def iso_with_offset(self, text):
        instant = exp.TryCast(this=text, to=exp.DataType.build("TIMESTAMPTZ"))
        return _fn("DATETIME", instant, _s("UTC"))

    def unix_seconds(self, seconds):
        micros = exp.cast(
            exp.Round(this=exp.Mul(this=seconds, expression=exp.Literal.number(1000000))),
            "BIGINT",
        )
        return _fn("DATETIME", _fn("TIMESTAMP_MICROS", micros), _s("UTC"))


class _Databricks(JsonDialect):
    def sub(self, doc, path):
        if not path:
            return doc.copy()
        steps = "".join(f"[{part}]" if part.isdigit() else f"['{part}']" for part in path)
        return _fn("TRY_VARIANT_GET", doc.copy(), _s(f"${steps}"), _s("variant"))

    def kind(self, doc, path):
        return _fn("SCHEMA_OF_VARIANT", self.sub(doc, path))

    def is_type(self, doc, path, category):
        kind = self.kind(doc, path)
        if category == "number":
            return exp.or_(
                _in(kind, self.types["number"]),
                exp.Like(this=kind.copy(), expression=_s("DECIMAL%")),
            )
        if category == "array":
            return exp.Like(this=kind, expression=_s("ARRAY%"))
        return super().is_type(doc, path, category)

    def text(self, doc, path):
        return _fn("TRY_VARIANT_GET", self.sub(doc, path), _s("$"), _s("string"))

    def any_element(self, doc, path, matches):
        item = exp.to_identifier("item")
        array = _fn("TRY_VARIANT_GET", self.sub(doc, path), _s("$"), _s("array<variant>"))
        matching = exp.ArrayFilter(
            this=array,
            expression=exp.Lambda(this=matches(exp.column(item.copy())), expressions=[item]),
        )
        return exp.GT(
            this=exp.Coalesce(
                this=exp.ArraySize(this=matching), expressions=[exp.Literal.number(0)]
            ),
            expression=exp.Literal.number(0),
        )

    def _from_epoch(self, micros: exp.Expression) -> exp.Expression:
        epoch = exp.cast(_s("1970-01-01 00:00:00"), "TIMESTAMPNTZ")
        return _fn("TIMESTAMPADD", exp.var("MICROSECOND"), micros, epoch)

    def iso_with_offset(self, text):
        instant = exp.TryCast(this=text, to=exp.DataType.build("TIMESTAMPLTZ"))
        return self._from_epoch(_fn("UNIX_MICROS", instant))

    def iso_naive(self, text):
        return exp.TryCast(this=text, to=exp.DataType.build("TIMESTAMPNTZ"))

    def unix_seconds(self, seconds):
        micros = exp.cast(
            exp.Round(this=exp.Mul(this=seconds, expression=exp.Literal.number(1000000))),
            "BIGINT",
        )
        return self._from_epoch(micros)


_JSON_DIALECTS: dict[str, JsonDialect] = {
    "duckdb": _DuckDB(
        "duckdb",
        {
            "number": ("BIGINT", "UBIGINT", "DOUBLE"),
            "string": ("VARCHAR",),
            "boolean": ("BOOLEAN",),
            "array": ("ARRAY",),
        },
        "NULL",
    ),
    "postgres": _Postgres(
        "postgres",
        {
            "number": ("number",),
            "string": ("string",),
            "boolean": ("boolean",),
            "array": ("array",),
        },
        "null",
    ),
    "snowflake": _Snowflake(
        "snowflake",
        {
            "number": ("INTEGER", "DECIMAL", "DOUBLE"),
            "string": ("VARCHAR",),
            "boolean": ("BOOLEAN",),
            "array": ("ARRAY",),
        },
        "NULL_VALUE",
    ),
    "bigquery": _BigQuery(
        "bigquery",
        {
            "number": ("number",),
            "string": ("string",),
            "boolean": ("boolean",),
            "array": ("array",),
        },
        "null",
    ),
    "databricks": _Databricks(
        "databricks",
        {
            "number": ("TINYINT", "SMALLINT", "INT", "BIGINT", "FLOAT", "DOUBLE"),
            "string": ("STRING",),
            "boolean": ("BOOLEAN",),
            "array": ("ARRAY",),
        },
        "VOID",
    ),
}


def json_dialect(name: str) -> JsonDialect:
    """The JSON primitives for the sqlglot dialect ``name`` (one of ``DIALECTS``)."""
    try:
        return _JSON_DIALECTS[name]
    except KeyError:
        raise ValueError(
            f"unsupported dialect {name!r}; use one of {', '.join(DIALECTS)}"
        ) from None
