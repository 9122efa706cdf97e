"""Throwaway Postgres databases (scenarios, benches, tests): one left by a process killed inside
``new_database`` is dropped by the next ``new_database`` of its family, one still in use is not."""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from nudge.core.warehouse.postgres import _claim_key, connect_postgres, new_database
from tests.conftest import SERVER

# A family of its own, so that no other test's databases are looked at.
FAMILY = f"nudge_test_abandoned{secrets.token_hex(3)}_"
HOLD = """
import sys, time
from nudge.core.warehouse.postgres import new_database
with new_database(sys.argv[1], sys.argv[2]):
    print("ready", flush=True)
    time.sleep(600)
"""


def _databases() -> set[str]:
    with connect_postgres(SERVER) as con, con.cursor() as cursor:
        cursor.execute("select datname from pg_database where datname like 'nudge_test_%'")
        return {row[0] for row in cursor.fetchall()}


def _claimed(name: str) -> bool:
    with connect_postgres(SERVER) as con, con.cursor() as cursor:
        cursor.execute("select pg_try_advisory_lock(%s)", (_claim_key(name),))
        return not cursor.fetchone()[0]  # the lock goes with the connection


@contextmanager
def held(name: str) -> Iterator[subprocess.Popen[str]]:
    """Another process inside ``new_database(name)``, killed (SIGKILL) when the block ends."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, name, SERVER], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
        yield process
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()


def _wait_unclaimed(name: str) -> None:
    """Until the server has seen the killed process's connection go (and its lock with it)."""
    deadline = time.monotonic() + 30
    while _claimed(name):
        assert time.monotonic() < deadline, f"{name} is still claimed 30 s after its process died"
        time.sleep(0.05)


def test_a_database_left_by_a_killed_process_is_dropped_by_the_next(postgres_server) -> None:
    abandoned = f"{FAMILY}{secrets.token_hex(6)}"
    with held(abandoned):
        assert abandoned in _databases()
    _wait_unclaimed(abandoned)
    assert abandoned in _databases()  # SIGKILL left it behind

    with new_database(f"{FAMILY}{secrets.token_hex(6)}", SERVER):
        assert abandoned not in _databases()


def test_a_database_in_use_is_kept(postgres_server) -> None:
    in_use = f"{FAMILY}{secrets.token_hex(6)}"
    other_family = f"{FAMILY}x_{secrets.token_hex(6)}"
    try:
        with held(in_use), held(other_family):
            pass  # both processes killed: two abandoned databases, one of another family
        _wait_unclaimed(in_use)
        with held(in_use):  # alive again: the name is claimed
            with new_database(f"{FAMILY}x_{secrets.token_hex(6)}", SERVER):
                found = _databases()
                assert in_use in found  # its family is another, and it is in use anyway
                assert other_family not in found  # this family's abandoned one went
            with new_database(f"{FAMILY}{secrets.token_hex(6)}", SERVER):
                assert in_use in _databases()  # same family, but claimed
    finally:
        with new_database(f"{FAMILY}{secrets.token_hex(6)}", SERVER):
            pass  # in_use is abandoned now: this drops it
        assert not {d for d in _databases() if d.startswith(FAMILY)}


def test_a_name_that_is_not_a_family_and_hex_is_refused() -> None:
    with pytest.raises(ValueError, match="family"), new_database("scratch", SERVER):
        pass
