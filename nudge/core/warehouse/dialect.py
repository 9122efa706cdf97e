"""nudge's own SQL, written once in DuckDB's dialect, rendered for PostgreSQL.

The journey engine, the senders and the ledger write DuckDB SQL. On Postgres every statement goes
through ``to_postgres`` once (cached by its text): sqlglot transpiles it, and the few DuckDB
constructs sqlglot leaves as they are get their Postgres form here, in one place:

- ``create or replace [temp] table t ...`` becomes ``drop table if exists t; create ... t ...``;
- ``insert or ignore`` becomes ``insert ... on conflict do nothing``, and
  ``insert or replace into t ...`` becomes ``insert ... on conflict (its primary key) do update``
  (the key is read from nudge's table definitions, ``nudge.core.warehouse.schema``);
- the type ``json`` and ``json(text)`` become ``jsonb``, as in nudge's tables there; the
  operands of ``||`` are cast to text (on ``jsonb``, Postgres's ``||`` merges documents);
- ``to_seconds(n)`` becomes ``make_interval(secs => n)``; ``sha256(text)`` hashes the text's UTF-8
  bytes; ``any_value`` (Postgres 16) becomes the first non-null of an ``array_agg``;
  ``try_cast(text as boolean)`` reads the words DuckDB reads (as the dbt macro
  ``try_cast_boolean`` does);
- ``anti join``/``semi join`` become ``[not] exists``;
- ``group by all`` becomes a group by the positions of the selected expressions without an
  aggregate, ``order by all`` an order by every position;
- ``duckdb_tables()`` and ``duckdb_views()`` read ``information_schema`` (the columns nudge uses);
- a subquery in ``from`` without a name gets one (Postgres 15 requires it);
- ``on conflict ... do update set c = f(c, ...)``: the bare ``c`` is qualified with the table;
- JSON paths (``doc ->> '$.key'``, ``json_extract_string``) become ``doc ->> 'key'`` (``jsonb``),
  ``doc ->> '$.a.b'`` ``doc #>> array['a', 'b']``, the path ``$`` (the whole document)
  ``#>> '{}'``; a path passed as a parameter is unwrapped
  from ``$."key"`` by the database, a path computed in SQL (``'$.' || topic || '.' || channel``)
  split at its dots into the keys of ``#>``/``#>>``; ``json_type(doc[, path])`` comes from ``jsonb_typeof`` with
  DuckDB's names (``UBIGINT``, ``BIGINT`` or ``DOUBLE`` for a number);
- ``?`` and ``$name`` parameters become psycopg2's ``%s`` and ``%(name)s``, with every literal
  ``%`` doubled, so statements always run with parameters.

sqlglot cannot parse ``?::type[]`` inside a function call: write ``cast(? as type[])``.
"""

from __future__ import annotations

import functools
import itertools
import re

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ErrorLevel

# Stand-ins for parameters while the statement is rendered, replaced once ``%`` are doubled.
_POSITIONAL = "__nudge_param__"
_NAMED = "__nudge_named_"
_NAMED_RE = re.compile(_NAMED + r"(\w+?)__")
_SUBQUERY_NAMES = itertools.count()
_DUCKDB = Dialect.get_or_raise("duckdb")
# any_value (Postgres 16) for every type, nulls skipped as DuckDB's does.
_ANY_VALUE = "(array_agg(v) filter (where v is not null))[1]"
# DuckDB's json_type names for jsonb_typeof's (whole numbers UBIGINT or BIGINT, as DuckDB's).
_JSON_TYPE = (
    "case jsonb_typeof(v) when 'number' then case when (v #>> '{}') ~ '^[0-9]+$' then 'UBIGINT'"
    " when (v #>> '{}') ~ '^-[0-9]+$' then 'BIGINT' else 'DOUBLE' end"
    " when 'string' then 'VARCHAR' when 'boolean' then 'BOOLEAN' when 'null' then 'NULL'"
    " when 'object' then 'OBJECT' when 'array' then 'ARRAY' end"
)
# DuckDB's catalog functions, with the columns nudge reads, from Postgres's information schema.
_CATALOG_FUNCTIONS = {
    "duckdb_tables": "select table_schema as schema_name, table_name from information_schema.tables"
    " where table_type = 'BASE TABLE'",
    "duckdb_views": "select table_schema as schema_name, table_name as view_name"
    " from information_schema.views",
}
# What DuckDB reads as true or false when casting text to boolean (the dbt macro
# try_cast_boolean in macros/portable says the same).
_BOOLEAN_TEXT = (
    "case when lower(cast(v as text)) in ('true', 't', 'yes', 'y', '1') then true"
    " when lower(cast(v as text)) in ('false', 'f', 'no', 'n', '0') then false end"
)


def _parsed(template: str, **parts: exp.Expression) -> exp.Expression:
    """``template`` (Postgres SQL naming ``parts`` as columns) with the parts put in, themselves
    rendered for Postgres (``transform`` does not visit what a node is replaced by)."""
    tree = sqlglot.parse_one(template, read="postgres")
    for column in list(tree.find_all(exp.Column)):
        if column.name in parts:
            column.replace(parts[column.name].copy().transform(_postgres_node))
    return tree


def _json_path_lookup(node: exp.JSONExtract | exp.JSONExtractScalar) -> exp.Expression:
    """A DuckDB JSON path lookup on Postgres: literal paths as sqlglot renders them, a path given
    as a parameter unwrapped from ``$."key"`` by the database (one key), a path computed in SQL
    (``'$.' || topic || '.' || channel``) split at its dots into the keys ``#>``/``#>>`` take."""
    path = node.expression
    if isinstance(path, exp.JSONPath):
        node.set("only_json_types", True)
        return node
    if isinstance(path, exp.Placeholder):
        node.set("only_json_types", True)
        node.set(
            "expression", _parsed("regexp_replace(path, '^[$][.]\"?(.*?)\"?$', '\\1')", path=path)
        )
        return node
    keys = _parsed("string_to_array(substr(path, 3), '.')", path=path)
    if isinstance(node, exp.JSONExtractScalar):
        return exp.JSONBExtractScalar(this=node.this, expression=keys)
    return exp.JSONBExtract(this=node.this, expression=keys)


def _is_root(path: exp.Expression) -> bool:
    """The JSON path ``$``: the whole document."""
    if isinstance(path, exp.JSONPath):
        return all(isinstance(p, exp.JSONPathRoot) for p in path.expressions)
    return isinstance(path, exp.Literal) and path.is_string and path.name == "$"


def _nested_keys(path: exp.Expression) -> list[str]:
    """The keys of a JSON path of more than one key (``$.a.b``), else none."""
    if not isinstance(path, exp.JSONPath):
        return []
    keys = [p for p in path.expressions if not isinstance(p, exp.JSONPathRoot)]
    if len(keys) < 2 or not all(isinstance(k, exp.JSONPathKey) for k in keys):
        return []
    return [str(k.this) for k in keys]


def _postgres_node(node: exp.Expression) -> exp.Expression:
    """One DuckDB-only node in the form Postgres reads (see the module docstring)."""
    if (
        isinstance(node, exp.Subquery)
        and not node.alias
        and isinstance(node.parent, (exp.From, exp.Join))
    ):  # Postgres before 16 names every subquery in from
        return exp.alias_(node, f"_nudge_q{next(_SUBQUERY_NAMES)}", table=True, copy=False)
    if isinstance(node, exp.Table) and isinstance(node.this, exp.Anonymous):
        catalog = _CATALOG_FUNCTIONS.get(str(node.this.this).lower())
        if catalog:
            alias = node.alias or str(node.this.this)
            return sqlglot.parse_one(catalog, read="postgres").subquery(alias, copy=False)
    if isinstance(node, exp.Select) and any(
        j.kind in ("ANTI", "SEMI") for j in node.args.get("joins") or []
    ):
        return _joins_as_exists(node)
    if isinstance(node, exp.Group) and node.args.get("all"):
        return _grouped_by_position(node)
    if isinstance(node, exp.Order) and _orders_by_all(node):
        return exp.Order(
            expressions=[
                exp.Ordered(this=exp.Literal.number(i), nulls_first=False)
                for i in range(1, len(node.parent.selects) + 1)
            ]
        )
    if isinstance(node, exp.DataType) and node.is_type(exp.DataType.Type.JSON):
        return exp.DataType.build("JSONB")  # as nudge's tables store JSON there
    if isinstance(node, exp.ParseJSON):  # json(text)
        return exp.cast(node.this.transform(_postgres_node), exp.DataType.build("JSONB"))
    if isinstance(node, exp.DPipe):  # DuckDB's || joins text; on jsonb Postgres's merges JSON
        for side in ("this", "expression"):
            operand = node.args[side]
            text = isinstance(operand, exp.Cast) and operand.to.is_type(*exp.DataType.TEXT_TYPES)
            if not (text or isinstance(operand, (exp.DPipe, exp.Literal))):
                node.set(side, exp.cast(operand, exp.DataType.build("TEXT")))
        return node
    if isinstance(node, exp.Placeholder):
        named = node.name not in ("", "?")
        return exp.var(f"{_NAMED}{node.name}__" if named else _POSITIONAL)
    if isinstance(node, (exp.JSONExtractScalar, exp.JSONExtract)) and _is_root(node.expression):
        if isinstance(node, exp.JSONExtract):
            return node.this
        return _parsed("v #>> '{}'", v=node.this)
    if isinstance(node, exp.JSONType):
        document = node.this
        if node.expression is not None and not _is_root(node.expression):
            path = _DUCKDB.to_json_path(node.expression)
            document = exp.JSONExtract(this=document, expression=path)
        return exp.paren(_parsed(_JSON_TYPE, v=document), copy=False)
    if isinstance(node, exp.JSONExtractScalar) and _nested_keys(node.expression):
        keys = [exp.Literal.string(k) for k in _nested_keys(node.expression)]
        return exp.JSONBExtractScalar(this=node.this, expression=exp.Array(expressions=keys))
    if isinstance(node, (exp.JSONExtractScalar, exp.JSONExtract)):
        return _json_path_lookup(node)
    if isinstance(node, exp.IgnoreNulls) and isinstance(node.this, exp.AnyValue):
        return _parsed(_ANY_VALUE, v=node.this.this)
    if isinstance(node, exp.AnyValue):
        return _parsed(_ANY_VALUE, v=node.this)
    if isinstance(node, exp.SHA2):
        return _parsed("encode(sha256(convert_to(cast(v as text), 'UTF8')), 'hex')", v=node.this)
    if isinstance(node, exp.Anonymous) and str(node.this).lower() == "to_seconds":
        return _parsed("make_interval(secs => v)", v=node.expressions[0])
    if isinstance(node, exp.TryCast) and node.to.is_type(exp.DataType.Type.BOOLEAN):
        return exp.paren(_parsed(_BOOLEAN_TEXT, v=node.this), copy=False)
    if isinstance(node, exp.JSONObject):  # Postgres 15 has no json_object(key, value, ...)
        pairs = [
            part.transform(_postgres_node)
            for kv in node.expressions
            for part in (kv.this, kv.expression)
        ]
        return exp.Anonymous(this="jsonb_build_object", expressions=pairs)
    return node


def _grouped_by_position(group: exp.Group) -> exp.Group:
    """``group by all``: by the position of every selected expression without an aggregate."""
    select = group.parent
    positions = [
        exp.Literal.number(i)
        for i, item in enumerate(select.expressions, start=1)
        if not item.find(exp.AggFunc)
    ]
    return exp.Group(expressions=positions)


def _joins_as_exists(select: exp.Select) -> exp.Select:
    """``a anti join b on c`` / ``semi join``: ``where [not] exists (select 1 from b where c)``;
    ``using (k)`` compares ``k`` of the table in ``from`` with ``b``'s. The tests go first in the
    ``where``, so ``?`` parameters keep their order (a join stands before the ``where``)."""
    left = select.args["from_"].this.alias_or_name
    joins = select.args["joins"]
    tests: list[exp.Expression] = []
    for position, join in enumerate(list(joins)):
        if join.kind not in ("ANTI", "SEMI"):
            continue
        later = joins[position + 1 :]
        if any(p.name in ("", "?") for j in later for p in j.find_all(exp.Placeholder)):
            raise ValueError(f"{join.kind.lower()} join before a join with `?`: name it ($name)")
        right = join.this
        condition = join.args.get("on")
        if condition is None:
            condition = exp.and_(
                *(
                    exp.column(c.name, left).eq(exp.column(c.name, right.alias_or_name))
                    for c in join.args.get("using") or []
                )
            )
        found = exp.Exists(this=exp.select("1").from_(right.copy()).where(condition.copy()))
        tests.append(exp.not_(found) if join.kind == "ANTI" else found)
        join.pop()
    where = select.args.get("where")
    select.set("where", exp.Where(this=exp.and_(*tests, *([where.this] if where else []))))
    return select


def _orders_by_all(order: exp.Order) -> bool:
    """``order by all``: by every selected expression, in order."""
    return [str(o.this).upper() for o in order.expressions] == ["ALL"] and isinstance(
        order.expressions[0].this, exp.Var
    )


def _render(statement: exp.Expression) -> str:
    return statement.transform(_postgres_node).sql("postgres", unsupported_level=ErrorLevel.RAISE)


def _table_name(table: exp.Table) -> str:
    return f"{table.db}.{table.name}" if table.db else table.name


def _statements(statement: exp.Expression) -> list[str]:
    """The Postgres text of one parsed DuckDB statement (two for ``create or replace``)."""
    if isinstance(statement, exp.Create) and statement.args.get("replace"):
        statement.set("replace", False)
        table = statement.find(exp.Table)
        return [f"drop table if exists {_table_name(table)}", _render(statement)]
    alternative = str(statement.args.get("alternative") or "").upper()
    if isinstance(statement, exp.Insert) and alternative == "IGNORE":
        statement.set("alternative", None)
        return [f"{_render(statement)} on conflict do nothing"]
    if isinstance(statement, exp.Insert) and alternative == "REPLACE":
        statement.set("alternative", None)
        table = statement.find(exp.Table)
        all_columns, keys = _tables().get(_table_name(table), ((), ()))
        if not keys:
            raise ValueError(f"insert or replace into {_table_name(table)}: no primary key known")
        columns = (
            [c.name for c in statement.this.expressions]
            if isinstance(statement.this, exp.Schema)
            else all_columns
        )
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in keys)
        action = f"do update set {updates}" if updates else "do nothing"
        return [f"{_render(statement)} on conflict ({', '.join(keys)}) {action}"]
    if isinstance(statement, exp.Insert) and statement.args.get("conflict"):
        _qualify_conflict_update(statement)
    return [_render(statement)]


def _qualify_conflict_update(insert: exp.Insert) -> None:
    """``on conflict ... do update set c = f(c, excluded.c)``: DuckDB reads a bare ``c`` as the
    row in the table, Postgres calls it ambiguous; name the table."""
    table = insert.find(exp.Table).name
    for assignment in insert.args["conflict"].args.get("expressions") or []:
        for column in assignment.expression.find_all(exp.Column):
            if not column.table:
                column.set("table", exp.to_identifier(table))


@functools.cache
def _tables() -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """``schema.table`` -> (its columns, its primary key columns), from nudge's definitions."""
    from nudge.core.warehouse.postgres import parsed_definitions

    tables: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
    for statement in parsed_definitions():
        if not isinstance(statement, exp.Create) or not isinstance(statement.this, exp.Schema):
            continue
        columns: list[str] = []
        keys: list[str] = []
        for item in statement.this.expressions:
            constraints = item.args.get("constraints") or []
            if isinstance(item, exp.ColumnDef):
                columns.append(item.name)
                if any(isinstance(c.kind, exp.PrimaryKeyColumnConstraint) for c in constraints):
                    keys.append(item.name)
            elif isinstance(item, exp.PrimaryKey):
                keys.extend(c.name for c in item.expressions)
        tables[_table_name(statement.this.this)] = (tuple(columns), tuple(keys))
    return tables


@functools.cache
def written_tables(sql: str) -> tuple[tuple[str, bool], ...]:
    """The tables whose rows ``sql`` (DuckDB) inserts, updates, deletes or creates from a query,
    each with whether the statement (re)creates it: what ``PostgresConnection`` analyses after a
    large change."""
    written: dict[str, bool] = {}
    for statement in sqlglot.parse(sql, read="duckdb"):
        created = isinstance(statement, exp.Create) and statement.expression is not None
        if not (created or isinstance(statement, (exp.Insert, exp.Update, exp.Delete))):
            continue
        target = statement.this
        table = target.this if isinstance(target, exp.Schema) else target
        if isinstance(table, exp.Table):
            name = _table_name(table)
            written[name] = written.get(name, False) or created
    return tuple(written.items())


@functools.cache
def to_postgres(sql: str) -> str:
    """``sql`` (DuckDB, ``?``/``$name`` parameters) as psycopg2-ready Postgres text."""
    statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    text = ";\n".join(t for s in statements for t in _statements(s)).replace("%", "%%")
    text = text.replace(_POSITIONAL, "%s")
    return _NAMED_RE.sub(lambda m: f"%({m.group(1)})s", text)
