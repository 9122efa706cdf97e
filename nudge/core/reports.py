"""Read-only views of a workspace for people: segment sizes, one user's profile, run summaries."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import duckdb

from nudge.core.identity import person_ids
from nudge.core.warehouse.connection import connect, warehouse_exists
from nudge.core.workspace import Workspace


def segment_sizes(workspace: Workspace) -> list[tuple[str, int]]:
    with connect(workspace.warehouse_path, read_only=True) as con:
        return con.execute(
            "select segment, count(*) from marts.fct_segment_memberships group by all order by 1"
        ).fetchall()


def rows(con: Any, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    cursor = con.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def user_traits(workspace: Workspace, user_id: str) -> dict[str, Any]:
    """The current traits of one user as of the last run; none before the first run or for a
    user the warehouse does not know."""
    if not warehouse_exists(workspace.warehouse_path):
        return {}
    with connect(workspace.warehouse_path, read_only=True) as con:
        try:
            found = con.execute(
                "select traits from marts.dim_users where user_id = ?", [user_id]
            ).fetchone()
        except duckdb.CatalogException:  # the warehouse exists, but no run has built it yet
            return {}
    return json.loads(found[0]) if found and found[0] else {}


def user_profile(workspace: Workspace, user_id: str, *, events: int = 20) -> dict[str, Any] | None:
    """Traits, devices, segments, recent events, journeys and messages of one user, as of the
    last run. An id merged into another person gives that person's profile; their journeys and
    messages include those of every id merged into them."""
    with connect(workspace.warehouse_path, read_only=True) as con:
        user_id, ids = person_ids(con, user_id)
        found = con.execute(
            "select traits from marts.dim_users where user_id = ?", [user_id]
        ).fetchone()
        if found is None:
            return None
        return {
            "user_id": user_id,
            "merged_ids": ids[1:],
            "traits": json.loads(found[0]) if found[0] else {},
            "devices": [
                {**device, "attributes": json.loads(device["attributes"] or "{}")}
                for device in rows(
                    con,
                    "select device_id, platform, last_used_at, attributes, updated_at"
                    " from marts.dim_user_devices where user_id = ? order by updated_at desc",
                    [user_id],
                )
            ],
            "segments": [
                r["segment"]
                for r in rows(
                    con,
                    "select segment from marts.fct_segment_memberships where user_id = ? order by 1",
                    [user_id],
                )
            ],
            "recent_events": [
                {**event, "properties": json.loads(event["properties"] or "{}")}
                for event in rows(
                    con,
                    "select timestamp, type, event, name, properties from marts.fct_events"
                    " where user_id = ? order by timestamp desc limit ?",
                    [user_id, events],
                )
            ],
            "journeys": rows(
                con,
                "select journey, status, current_step, started_at, next_wake_at, exit_reason"
                " from nudge.journey_entries where list_contains(cast(? as varchar[]), user_id) order by started_at",
                [ids],
            ),
            "messages": rows(  # the ledger keeps the id each message was planned for
                con,
                "select user_id, journey, step, channel, template, status, reason, completed_at"
                " from nudge.delivery_ledger where list_contains(cast(? as varchar[]), user_id) order by queued_at",
                [ids],
            ),
        }


def run_summary(workspace: Workspace) -> dict[str, list[dict[str, Any]]]:
    """What the last runs did: entries per journey, messages by status, segment sizes."""
    with connect(workspace.warehouse_path, read_only=True) as con:
        return {
            "segments": rows(
                con,
                "select segment, count(*) as members from marts.fct_segment_memberships"
                " group by all order by 1",
                [],
            ),
            "journey_entries": rows(
                con,
                "select journey, status, count(*) as entries from nudge.journey_entries"
                " group by all order by all",
                [],
            ),
            "messages": rows(
                con,
                "select channel, status, coalesce(reason, '') as reason, count(*) as messages"
                " from nudge.delivery_ledger group by all order by all",
                [],
            ),
        }


@dataclass(frozen=True)
class SegmentPage:
    """One page of a segment's members (user ids in order) and how many it has in all."""

    user_ids: list[str]
    total: int


def segment_names(workspace: Workspace) -> list[str]:
    """Every segment the last run built, empty ones included."""
    with connect(workspace.warehouse_path, read_only=True) as con:
        rows = con.execute("select segment from marts.fct_segment_definitions order by 1")
        return [name for (name,) in rows.fetchall()]


def segment_members(workspace: Workspace, segment: str, *, limit: int, offset: int) -> SegmentPage:
    with connect(workspace.warehouse_path, read_only=True) as con:
        (total,) = con.execute(
            "select count(*) from marts.fct_segment_memberships where segment = ?", [segment]
        ).fetchone()
        page = con.execute(
            "select user_id from marts.fct_segment_memberships where segment = ?"
            " order by user_id limit ? offset ?",
            [segment, limit, offset],
        ).fetchall()
    return SegmentPage([user_id for (user_id,) in page], total)
