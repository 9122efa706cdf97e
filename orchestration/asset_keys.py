"""Every Dagster asset key nudge's definitions name, defined once.

The keys follow the data: ``collector`` (outside Dagster), ``landing/events`` (the files), ``raw/events``, dbt models as
``<schema>/<model>`` (``marts/dim_users``), every segment as ``segments/<name>`` whatever model
builds it, ``journeys/<name>`` and ``journeys/state``, then ``delivery/outbox``, one sender per
channel ``delivery/<channel>`` and ``delivery/ledger``. dbt sources over the tables that Python
assets write use the same keys (``SOURCE_KEYS``), which joins the lineage.
"""

from __future__ import annotations

import dagster as dg

SEGMENTS_GROUP = "segments"

COLLECTOR = dg.AssetKey(["collector"])
LANDING_EVENTS = dg.AssetKey(["landing", "events"])
RAW_EVENTS = dg.AssetKey(["raw", "events"])
JOURNEY_STATE = dg.AssetKey(["journeys", "state"])
OUTBOX = dg.AssetKey(["delivery", "outbox"])
LEDGER = dg.AssetKey(["delivery", "ledger"])


def model_key(schema: str, model: str) -> dg.AssetKey:
    """A dbt model that is not a segment, by the schema it builds in."""
    return dg.AssetKey([schema, model])


def segment_key(segment: str) -> dg.AssetKey:
    return dg.AssetKey([SEGMENTS_GROUP, segment])


def journey_key(journey: str) -> dg.AssetKey:
    return dg.AssetKey(["journeys", journey])


def sender_key(channel: str) -> dg.AssetKey:
    return dg.AssetKey(["delivery", channel])


# dbt sources over tables that Python assets write, by (source name, table).
SOURCE_KEYS = {
    ("raw", "events"): RAW_EVENTS,
    ("nudge", "delivery_ledger"): LEDGER,
    ("nudge", "outbox"): OUTBOX,
    ("nudge", "journey_entries"): JOURNEY_STATE,
    ("nudge", "journey_transitions"): JOURNEY_STATE,
    ("nudge", "runs"): JOURNEY_STATE,
}
