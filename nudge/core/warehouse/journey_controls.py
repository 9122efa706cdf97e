"""Pausing and resuming journeys: state kept in ``nudge.journey_controls``.

A paused journey does not run at all: nobody is admitted (triggers that fire while it is paused
are not kept for later), nobody moves or exits, and nothing is planned into the outbox. People
keep their place; on resume, the first run moves them on as if they had waited there, so a wait
that ran out during the pause is done at that run.

A run holds the warehouse file for writing while it works, so ``nudge journeys pause|resume``
queues its request instead: one small JSON file per request in the workspace's
``control_requests/`` folder, written to a hidden name and renamed into place (readers never see
half a request; two requests never overwrite each other). Whoever next opens the warehouse for
writing applies the queued requests in order and removes them (``nudge.core.warehouse.connection``),
and ``pending_paused_journeys`` lets the sender stop handing over a journey's messages at once.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from nudge.core.warehouse.locks import JOURNEY_CONTROLS, exclusive

REQUEST_SUFFIX = ".json"


def set_paused(con: duckdb.DuckDBPyConnection, journey: str, *, paused: bool, at: datetime) -> None:
    """Pause (or resume) ``journey``; ``at`` (naive UTC) is when the change was made."""
    con.execute(
        """insert into nudge.journey_controls values (?, ?, ?)
           on conflict (journey) do update set
               paused = excluded.paused, changed_at = excluded.changed_at""",
        [journey, paused, at],
    )


def paused_journeys(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute("select journey from nudge.journey_controls where paused").fetchall()
    return {journey for (journey,) in rows}


@dataclass(frozen=True)
class ControlRequest:
    path: Path
    journey: str
    paused: bool
    at: datetime


def request_control(requests_dir: Path, journey: str, *, paused: bool, at: datetime) -> Path:
    """Queue a pause (or resume) of ``journey``, on disk before this returns."""
    requests_dir.mkdir(parents=True, exist_ok=True)
    # Named by the request's time, so that sorting the names replays requests in order.
    name = f"{time.time_ns():020d}-{uuid.uuid4().hex}{REQUEST_SUFFIX}"
    tmp = requests_dir / f".{name}.tmp"
    body = {"journey": journey, "paused": paused, "at": at.isoformat()}
    with open(tmp, "w") as fh:
        json.dump(body, fh)
        fh.flush()
        os.fsync(fh.fileno())
    final = requests_dir / name
    os.replace(tmp, final)
    folder = os.open(requests_dir, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
    return final


def _request_names(requests_dir: Path) -> tuple[str, ...]:
    try:
        names = os.listdir(requests_dir)
    except FileNotFoundError:
        return ()
    return tuple(sorted(n for n in names if n.endswith(REQUEST_SUFFIX) and not n.startswith(".")))


def _read_requests(requests_dir: Path, names: tuple[str, ...]) -> list[ControlRequest]:
    requests = []
    for name in names:
        path = requests_dir / name
        try:
            body = json.loads(path.read_text())
        except FileNotFoundError:  # applied and removed meanwhile
            continue
        at = datetime.fromisoformat(body["at"])
        requests.append(ControlRequest(path, body["journey"], bool(body["paused"]), at))
    return requests


def apply_pending_requests(con: duckdb.DuckDBPyConnection, requests_dir: Path) -> int:
    """Write queued requests into ``nudge.journey_controls`` in order, then remove them.

    Leaves them queued while the table does not exist yet (a warehouse being created).
    """
    if not _request_names(requests_dir):
        return 0
    with exclusive(con, JOURNEY_CONTROLS):  # two steps applying at once could reorder them
        return _apply_requests(con, requests_dir)


def _apply_requests(con: duckdb.DuckDBPyConnection, requests_dir: Path) -> int:
    names = _request_names(requests_dir)
    has_table = con.execute(
        "select count(*) from information_schema.tables"
        " where table_schema = 'nudge' and table_name = 'journey_controls'"
    ).fetchone()
    if not has_table or not has_table[0]:
        return 0
    requests = _read_requests(requests_dir, names)
    for request in requests:
        set_paused(con, request.journey, paused=request.paused, at=request.at)
    # Removed only once written: a crash in between replays them, which changes nothing.
    for request in requests:
        request.path.unlink(missing_ok=True)
    return len(requests)


_paused_by_listing: dict[Path, tuple[tuple[str, ...], frozenset[str]]] = {}


def pending_paused_journeys(requests_dir: Path) -> frozenset[str]:
    """Journeys whose latest queued request is a pause, not yet applied to the warehouse.

    For the dispatcher, before it hands over each message: a pause made while a run sends stops
    that journey's sending at once. Cheap: one directory listing; request files never change
    once written, so they are read again only when the listing changes.
    """
    names = _request_names(requests_dir)
    cached = _paused_by_listing.get(requests_dir)
    if cached is not None and cached[0] == names:
        return cached[1]
    latest: dict[str, bool] = {}
    for request in _read_requests(requests_dir, names):
        latest[request.journey] = request.paused
    paused = frozenset(journey for journey, is_paused in latest.items() if is_paused)
    _paused_by_listing[requests_dir] = (names, paused)
    return paused
