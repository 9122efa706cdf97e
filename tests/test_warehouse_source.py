"""Reading a Segment/RudderStack warehouse schema in place (NUDGE_EVENT_SOURCE=segment_warehouse).

The same calls are given twice: as Segment-spec messages through the landing area, and as the
tables a Segment warehouse destination writes (identifies, users, tracks, one table per event,
pages, screens, groups, aliases; snake_case columns, properties and traits one column each,
context flattened into context_* columns, timestamps with time zone). Both workspaces are built
at the same instant and must hold the same people, traits and events.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from nudge.core.landing.loader import load_new_files
from nudge.core.landing.writer import land_messages
from nudge.core.warehouse.connection import connect
from nudge.core.warehouse.dbt import DbtBuildError, DbtWorkspaceProject
from nudge.core.warehouse.schema import ensure_tables
from nudge.core.workspace import Workspace

AS_OF = datetime(2026, 3, 2)

MESSAGES: list[dict[str, Any]] = [
    {"type": "track", "messageId": "m-2", "anonymousId": "a1", "event": "Order Completed",
     "properties": {"amount": 30, "currency": "EUR"}, "timestamp": "2026-03-01T00:30:00Z"},
    {"type": "identify", "messageId": "m-1", "userId": "u1", "anonymousId": "a1",
     "traits": {"email": "u1@example.com", "plan": "pro"}, "timestamp": "2026-03-01T01:00:00Z",
     "context": {"ip": "10.0.0.1"}},
    {"type": "track", "messageId": "m-3", "userId": "u1", "event": "Order Completed",
     "properties": {"amount": 12.5, "currency": "USD"}, "timestamp": "2026-03-01T02:00:00Z"},
    {"type": "track", "messageId": "m-4", "userId": "u2", "event": "Signed Up",
     "properties": {"plan": "free"}, "timestamp": "2026-03-01T02:00:00Z"},
    {"type": "page", "messageId": "m-5", "userId": "u1", "name": "Pricing",
     "properties": {"path": "/pricing", "title": "Pricing"}, "timestamp": "2026-03-01T03:00:00Z"},
    {"type": "screen", "messageId": "m-6", "userId": "u2", "name": "Home",
     "timestamp": "2026-03-01T03:00:00Z"},
    {"type": "track", "messageId": "m-8", "anonymousId": "a2", "event": "Signed Up",
     "timestamp": "2026-03-01T03:30:00Z"},
    {"type": "alias", "messageId": "m-7", "previousId": "a2", "userId": "u2",
     "timestamp": "2026-03-01T04:00:00Z"},
    {"type": "identify", "messageId": "m-9", "userId": "u2", "traits": {"plan": "free"},
     "timestamp": "2026-03-01T05:00:00Z"},
    # Only in the destination's users table (no identify row): read as an identify stamped
    # with the row's received_at.
    {"type": "identify", "messageId": "users:u3", "userId": "u3",
     "traits": {"email": "u3@example.com"}, "timestamp": "2026-03-01T06:00:00Z"},
    {"type": "group", "messageId": "m-10", "userId": "u1", "groupId": "g1",
     "traits": {"name": "Acme"}, "timestamp": "2026-03-01T06:00:00Z"},
]  # fmt: skip

# What a Segment warehouse destination writes for the same calls.
SEGMENT_SCHEMA = """
create schema segment;
create table segment.identifies (
    id varchar, anonymous_id varchar, user_id varchar, timestamp timestamptz,
    original_timestamp timestamptz, sent_at timestamptz, received_at timestamptz,
    uuid_ts timestamptz, context_ip varchar, context_library_name varchar,
    email varchar, plan varchar
);
insert into segment.identifies values
    ('m-1', 'a1', 'u1', '2026-03-01 01:00:00+00', '2026-03-01 01:00:00+00',
     '2026-03-01 01:00:01+00', '2026-03-01 01:00:02+00', '2026-03-01 07:00:00+00',
     '10.0.0.1', 'analytics-python', 'u1@example.com', 'pro'),
    ('m-9', null, 'u2', '2026-03-01 05:00:00+00', '2026-03-01 05:00:00+00',
     '2026-03-01 05:00:01+00', '2026-03-01 05:00:02+00', '2026-03-01 07:00:00+00',
     null, 'analytics-python', null, 'free');
create table segment.users (
    id varchar, received_at timestamptz, uuid_ts timestamptz, email varchar, plan varchar
);
insert into segment.users values
    ('u1', '2026-03-01 01:00:02+00', '2026-03-01 07:00:00+00', 'u1@example.com', 'pro'),
    ('u2', '2026-03-01 05:00:02+00', '2026-03-01 07:00:00+00', null, 'free'),
    ('u3', '2026-03-01 06:00:00+00', '2026-03-01 07:00:00+00', 'u3@example.com', null);
create table segment.tracks (
    id varchar, anonymous_id varchar, user_id varchar, event varchar, event_text varchar,
    timestamp timestamptz, original_timestamp timestamptz, sent_at timestamptz,
    received_at timestamptz, uuid_ts timestamptz, context_library_name varchar
);
insert into segment.tracks values
    ('m-2', 'a1', null, 'order_completed', 'Order Completed', '2026-03-01 00:30:00+00',
     null, null, '2026-03-01 00:30:02+00', '2026-03-01 07:00:00+00', 'analytics.js'),
    ('m-3', null, 'u1', 'order_completed', 'Order Completed', '2026-03-01 02:00:00+00',
     null, null, '2026-03-01 02:00:02+00', '2026-03-01 07:00:00+00', 'analytics-python'),
    ('m-4', null, 'u2', 'signed_up', 'Signed Up', '2026-03-01 02:00:00+00',
     null, null, '2026-03-01 02:00:02+00', '2026-03-01 07:00:00+00', 'analytics-python'),
    ('m-8', 'a2', null, 'signed_up', 'Signed Up', '2026-03-01 03:30:00+00',
     null, null, '2026-03-01 03:30:02+00', '2026-03-01 07:00:00+00', 'analytics.js');
create table segment.order_completed (
    id varchar, anonymous_id varchar, user_id varchar, event varchar, event_text varchar,
    timestamp timestamptz, received_at timestamptz, uuid_ts timestamptz,
    context_library_name varchar, amount double, currency varchar
);
insert into segment.order_completed values
    ('m-2', 'a1', null, 'order_completed', 'Order Completed', '2026-03-01 00:30:00+00',
     '2026-03-01 00:30:02+00', '2026-03-01 07:00:00+00', 'analytics.js', 30, 'EUR'),
    ('m-3', null, 'u1', 'order_completed', 'Order Completed', '2026-03-01 02:00:00+00',
     '2026-03-01 02:00:02+00', '2026-03-01 07:00:00+00', 'analytics-python', 12.5, 'USD');
create table segment.signed_up (
    id varchar, anonymous_id varchar, user_id varchar, event varchar, event_text varchar,
    timestamp timestamptz, received_at timestamptz, uuid_ts timestamptz, plan varchar
);
insert into segment.signed_up values
    ('m-4', null, 'u2', 'signed_up', 'Signed Up', '2026-03-01 02:00:00+00',
     '2026-03-01 02:00:02+00', '2026-03-01 07:00:00+00', 'free'),
    ('m-8', 'a2', null, 'signed_up', 'Signed Up', '2026-03-01 03:30:00+00',
     '2026-03-01 03:30:02+00', '2026-03-01 07:00:00+00', null);
create table segment.pages (
    id varchar, anonymous_id varchar, user_id varchar, name varchar, timestamp timestamptz,
    received_at timestamptz, uuid_ts timestamptz, path varchar, title varchar
);
insert into segment.pages values
    ('m-5', null, 'u1', 'Pricing', '2026-03-01 03:00:00+00', '2026-03-01 03:00:02+00',
     '2026-03-01 07:00:00+00', '/pricing', 'Pricing');
create table segment.screens (
    id varchar, anonymous_id varchar, user_id varchar, name varchar, timestamp timestamptz,
    received_at timestamptz, uuid_ts timestamptz
);
insert into segment.screens values
    ('m-6', null, 'u2', 'Home', '2026-03-01 03:00:00+00', '2026-03-01 03:00:02+00',
     '2026-03-01 07:00:00+00');
create table segment.aliases (
    id varchar, anonymous_id varchar, user_id varchar, previous_id varchar,
    timestamp timestamptz, received_at timestamptz, uuid_ts timestamptz
);
insert into segment.aliases values
    ('m-7', null, 'u2', 'a2', '2026-03-01 04:00:00+00', '2026-03-01 04:00:02+00',
     '2026-03-01 07:00:00+00');
create table segment.groups (
    id varchar, anonymous_id varchar, user_id varchar, group_id varchar,
    timestamp timestamptz, received_at timestamptz, uuid_ts timestamptz, name varchar
);
insert into segment.groups values
    ('m-10', null, 'u1', 'g1', '2026-03-01 06:00:00+00', '2026-03-01 06:00:02+00',
     '2026-03-01 07:00:00+00', 'Acme');
"""


def marts(workspace: Workspace) -> dict[str, Any]:
    with connect(workspace.warehouse_path, read_only=True) as con:
        users = {
            r[0]: (json.loads(r[1]), *r[2:])
            for r in con.execute(
                "select user_id, traits, email, plan, first_seen_at, last_seen_at "
                "from marts.dim_users"
            ).fetchall()
        }
        events = sorted(
            (*r[:6], json.loads(r[6]))
            for r in con.execute(
                "select message_id, user_id, type, event, name, timestamp, properties "
                "from marts.fct_events"
            ).fetchall()
        )
        groups = con.execute(
            "select user_id, group_id, traits ->> '$.name' from staging.stg_events "
            "where type = 'group'"
        ).fetchall()
    return {"users": users, "events": events, "groups": groups}


def built_workspace(home: Path) -> tuple[Workspace, DbtWorkspaceProject]:
    workspace = Workspace(home=home, content_dir=home / "content").ensure()
    project = DbtWorkspaceProject(workspace)
    project.assemble({})
    with connect(workspace.warehouse_path) as con:
        ensure_tables(con)
    return workspace, project


@pytest.fixture
def segment_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUDGE_EVENT_SOURCE", "segment_warehouse")
    monkeypatch.setenv("NUDGE_EVENT_SOURCE_SCHEMA", "segment")


def test_a_segment_warehouse_schema_gives_what_the_landing_area_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landed, landed_project = built_workspace(tmp_path / "landed")
    land_messages(landed.events_landing_dir, MESSAGES)
    with connect(landed.warehouse_path) as con:
        load_new_files(con, landed.events_landing_dir)
    landed_project.build(AS_OF, exclude="tag:delivery_reports")

    in_place, in_place_project = built_workspace(tmp_path / "in_place")
    with connect(in_place.warehouse_path) as con:
        con.execute(SEGMENT_SCHEMA)
    monkeypatch.setenv("NUDGE_EVENT_SOURCE", "segment_warehouse")
    in_place_project.build(AS_OF, exclude="tag:delivery_reports")

    expected, read = marts(landed), marts(in_place)
    assert read["users"] == expected["users"]
    assert read["events"] == expected["events"]
    assert read["groups"] == expected["groups"] == [("u1", "g1", "Acme")]
    # The comparison means something: identity links, traits and every call kind are there.
    assert read["users"]["u1"][0] == {"email": "u1@example.com", "plan": "pro"}
    assert {"u1", "u2", "u3"} == read["users"].keys()
    assert ("m-2", "u1") in {e[:2] for e in read["events"]}  # anonymous, linked by identify
    assert ("m-8", "u2") in {e[:2] for e in read["events"]}  # anonymous, linked by alias
    assert {e[2] for e in read["events"]} == {"track", "page", "screen"}


def test_later_rows_of_the_destination_are_read_by_the_next_build(
    tmp_path: Path, segment_source: None
) -> None:
    workspace, project = built_workspace(tmp_path / "ws")
    with connect(workspace.warehouse_path) as con:
        con.execute(SEGMENT_SCHEMA)
    project.build(AS_OF, exclude="tag:delivery_reports")
    with connect(workspace.warehouse_path) as con:
        con.execute(
            "insert into segment.identifies (id, user_id, timestamp, received_at, uuid_ts, plan) "
            "values ('m-11', 'u1', '2026-03-01 08:00:00+00', '2026-03-01 08:00:01+00', "
            "'2026-03-01 09:00:00+00', 'team')"
        )
    project.build(AS_OF, exclude="tag:delivery_reports")
    assert marts(workspace)["users"]["u1"][2] == "team"


def test_a_missing_schema_or_an_unknown_source_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, project = built_workspace(tmp_path / "ws")
    monkeypatch.setenv("NUDGE_EVENT_SOURCE", "segment_warehouse")
    monkeypatch.setenv("NUDGE_EVENT_SOURCE_SCHEMA", "rudder")
    with pytest.raises(DbtBuildError, match="no tables in schema 'rudder'"):
        project.build(AS_OF, exclude="tag:delivery_reports")
    monkeypatch.setenv("NUDGE_EVENT_SOURCE", "segmnt")
    with pytest.raises(DbtBuildError, match="NUDGE_EVENT_SOURCE is 'segmnt'"):
        project.build(AS_OF, exclude="tag:delivery_reports")
