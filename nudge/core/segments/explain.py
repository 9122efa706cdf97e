"""Why a user is (or is not) in a segment: the condition tree with each node's value.

Every node is evaluated with the real compiler (``compile_condition``) over the warehouse tables,
with the users relation restricted to the one user, so an explanation can never disagree with
the segment model built from the same compiler. The facts shown beside a node come from the same
place: ``performed`` and ``message`` counts are the compiled count subquery itself, run for the
user. The warehouse holds the state of the latest build, so an explanation is for that as_of
(the latest succeeded run's); asking for another instant is an error saying which one is held.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import duckdb
from sqlglot import exp, parse_one

from nudge.core.clock import to_utc_naive
from nudge.core.dsl.problems import did_you_mean
from nudge.core.dsl.spec import (
    All,
    AnyOf,
    Attribute,
    Condition,
    Content,
    Everyone,
    InSegment,
    MessageCondition,
    Not,
    Performed,
    RandomBucket,
    Segment,
    Subscription,
)
from nudge.core.dsl.words import condition_words
from nudge.core.opt_out import topic_preference
from nudge.core.segments.bucket import bucket_of
from nudge.core.segments.compiler import DIALECT, Relations, compile_condition, warehouse_relations
from nudge.core.warehouse.connection import connect, warehouse_exists
from nudge.core.workspace import Workspace

TRUE, FALSE = "✓", "✗"
INDENT = "  "


class ExplainError(ValueError):
    """The question cannot be answered (unknown user or segment, no build, other as_of)."""


def explain_segment(
    workspace: Workspace,
    content: Content,
    *,
    user_id: str,
    segment: str,
    as_of: datetime | None = None,
) -> str:
    """The explanation as text: the tree, each node marked ✓/✗ with its facts, then the verdict
    compared with the stored membership (``marts.fct_segment_memberships``)."""
    if not warehouse_exists(workspace.warehouse_path):
        raise ExplainError(f"no warehouse at {workspace.warehouse_path}: run the pipeline first")
    with connect(workspace.warehouse_path, read_only=True) as con:
        return _Explainer(con, content, user_id).explain(segment, as_of)


def _held_as_of(con: duckdb.DuckDBPyConnection) -> datetime:
    """The as_of the warehouse's marts were built at (the latest succeeded run's)."""
    try:
        (built,) = con.execute("select max(as_of) from marts.fct_segment_definitions").fetchone()
    except duckdb.CatalogException:
        built = None
    (run,) = con.execute("select max(as_of) from nudge.runs where status = 'succeeded'").fetchone()
    held = built or run
    if held is None:
        raise ExplainError("the warehouse has no build yet: run the pipeline first")
    return held


def _instant(moment: datetime) -> str:
    return moment.isoformat()


def _value(value: object) -> str:
    """A trait or preference value as JSON (never a Python repr)."""
    return json.dumps(value, ensure_ascii=False, default=str)


class _Explainer:
    def __init__(self, con: duckdb.DuckDBPyConnection, content: Content, user_id: str) -> None:
        self.con = con
        self.content = content
        self.user_id = user_id
        self.yaml_segments: dict[str, Segment] = {s.name: s for s in content.segments}

    def explain(self, segment: str, as_of: datetime | None) -> str:
        held = _held_as_of(self.con)
        if as_of is not None and to_utc_naive(as_of) != held:
            raise ExplainError(
                f"the warehouse holds the state at as_of {_instant(held)}, not "
                f"{_instant(as_of)}: run the pipeline at that instant to explain it"
            )
        self.as_of = held
        kinds = dict(
            self.con.execute("select segment, kind from marts.fct_segment_definitions").fetchall()
        )
        if segment not in kinds and segment not in self.yaml_segments:
            known = sorted({*kinds, *self.yaml_segments})
            raise ExplainError(
                f"unknown segment {segment!r}{did_you_mean(segment, known)}; "
                f"known: {', '.join(known) or 'none'}"
            )
        self.kinds = kinds
        user = self.con.execute(
            "select traits from marts.dim_users where user_id = ?", [self.user_id]
        ).fetchone()
        if user is None:
            raise ExplainError(
                f"user {self.user_id!r} is not a known user at as_of {_instant(held)} "
                "(no call carries that id, or the user was deleted)"
            )
        self.traits: dict[str, object] = json.loads(user[0]) if user[0] else {}
        self.relations = self._relations()

        stored = self._stored_member(segment)
        header = f"segment {segment} for user {self.user_id} at as_of {_instant(held)}"
        definition = self.yaml_segments.get(segment)
        if definition is None or definition.condition is None:
            kind = kinds.get(segment, "sql")
            lines = [
                f"{header}: {'member' if stored else 'not a member'}",
                f"{segment} is a {self._kind_label(kind)}: "
                f"the user {'is' if stored else 'is not'} in segments.{segment}",
            ]
            return "\n".join(lines)
        verdict, tree = self._node(definition.condition, 0)
        agreement = "agrees" if verdict == stored else "DISAGREES (rebuild the warehouse)"
        return "\n".join(
            [
                f"{header}: {'member' if verdict else 'not a member'}",
                *tree,
                f"stored membership (marts.fct_segment_memberships): "
                f"{'member' if stored else 'not a member'}; {agreement}",
            ]
        )

    # --- evaluation ---------------------------------------------------------------------------------

    def _relations(self) -> Relations:
        base = warehouse_relations(self.as_of)
        user = exp.Literal.string(self.user_id).sql(DIALECT)
        return Relations(
            users=f"(select * from marts.dim_users where user_id = {user})",
            events=f"(select * from marts.fct_events where user_id = {user})",
            ledger=base.ledger,
            segment=base.segment,
            as_of=base.as_of,
        )

    def _holds(self, condition: Condition) -> bool:
        sql = compile_condition(condition, self.relations, topics=self.content.topics)
        return bool(self.con.execute(sql).fetchall())

    def _count(self, condition: Performed | MessageCondition) -> int:
        """The compiled count subquery of a ``performed`` or ``message`` node, for the user."""
        sql = compile_condition(condition, self.relations, topics=self.content.topics)
        query = parse_one(sql, dialect=DIALECT)
        where = query.args.get("where")
        counted = where.find(exp.Subquery) if where is not None else None
        if not isinstance(query, exp.Select) or counted is None:
            raise ExplainError(f"cannot find the count in the compiled query:\n{sql}")
        query.set("where", None)
        query.set("distinct", None)
        query.set("expressions", [counted.copy()])
        return int(self.con.execute(query.sql(DIALECT)).fetchone()[0])

    def _stored_member(self, segment: str) -> bool:
        row = self.con.execute(
            "select 1 from marts.fct_segment_memberships where segment = ? and user_id = ?",
            [segment, self.user_id],
        ).fetchone()
        return row is not None

    def _kind_label(self, kind: str) -> str:
        return {
            "manual": "manual segment (uploaded list)",
            "yaml": "YAML segment",
        }.get(kind, "SQL model segment")

    def _window(self, within: timedelta | None) -> str:
        if within is None:
            return f"up to {_instant(self.as_of)}"
        return f"in ({_instant(self.as_of - within)}, {_instant(self.as_of)}]"

    def _node(self, condition: Condition, depth: int) -> tuple[bool, list[str]]:
        holds = self._holds(condition)
        pad = INDENT * depth
        mark = TRUE if holds else FALSE
        result = "true" if holds else "false"
        children: list[str] = []
        match condition:
            case All(parts) | AnyOf(parts):
                label = "all" if isinstance(condition, All) else "any"
                line = f"{label} of {len(parts)} conditions -> {result}"
                for part in parts:
                    children += self._node(part, depth + 1)[1]
            case Not(inner):
                line = f"not -> {result}"
                children = self._node(inner, depth + 1)[1]
            case Everyone():
                line = f"everyone: a known user -> {result}"
            case Attribute(name):
                value = (
                    f"value {_value(self.traits[name])}" if name in self.traits else "trait not set"
                )
                line = f"{condition_words(condition)}: {value} -> {result}"
            case Performed(within=within):
                count = self._count(condition)
                noun = "event" if count == 1 else "events"
                line = f"{condition_words(condition)}: {count} {noun} {self._window(within)} -> {result}"
            case MessageCondition(within=within):
                count = self._count(condition)
                noun = "message" if count == 1 else "messages"
                line = f"{condition_words(condition)}: {count} {noun} {self._window(within)} -> {result}"
            case InSegment(name):
                nested = self.yaml_segments.get(name)
                if nested is not None and nested.condition is not None:
                    line = f"in segment {name}: stored member of segments.{name} -> {result}"
                    children = self._node(nested.condition, depth + 1)[1]
                else:
                    kind = self._kind_label(self.kinds.get(name, "sql"))
                    line = f"in segment {name} ({kind}): member of segments.{name} -> {result}"
            case Subscription(topic):
                # The whole topic value: per-channel choices show as a mapping.
                preference = topic_preference(self.traits, topic)
                preference = "not set" if preference is None else preference
                line = (
                    f"{condition_words(condition)}: unsubscribed "
                    f"{_value(self.traits.get('unsubscribed', 'not set'))}, topic preference "
                    f"{_value(preference)} -> {result}"
                )
            case RandomBucket(salt=salt):
                bucket = bucket_of(salt, self.user_id)
                line = f"{condition_words(condition)}: bucket {bucket} of 0-99 -> {result}"
            case _:
                line = f"{condition_words(condition)} -> {result}"
        return holds, [f"{pad}{mark} {line}", *children]
