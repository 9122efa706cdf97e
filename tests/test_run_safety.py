"""A killed or stopped run never wedges the pipeline; one run at a time; reads and pauses during
a run. Real `nudge` processes against a real local SMTP server that holds each message until
the test lets it through, so a run can be caught in its send step."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from aiosmtpd.controller import Controller

from nudge.core.landing.writer import land_messages
from nudge.core.warehouse.connection import connect
from nudge.core.workspace import REPO_ROOT
from nudge.devtools.free_port import free_port
from tests.conftest import AT_A_TERMINAL

pytestmark = pytest.mark.slow

DEFINITIONS = """
segments:
  - {name: signed_up, condition: {performed: {event: signed_up}}}
templates:
  - {name: hello, channel: email, subject: "Hi", html: "<p>Hi</p>"}
journeys:
  - name: welcome
    trigger: {segment_entered: signed_up}
    steps: [{id: hello, send: {channel: email, template: hello}}]
"""
AS_OF = "2026-01-05T12:00:00Z"


class HeldSmtp:
    """Accepts mail, but each DATA waits until ``release`` (or 60 s); ``arrived`` is set by the
    first message, i.e. once a run is in its send step."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.gate = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.arrived.set()
        await asyncio.get_running_loop().run_in_executor(None, self.gate.wait, 60)
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[HeldSmtp, int]]:
    handler = HeldSmtp()
    port = free_port("127.0.0.1")
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        handler.gate.set()
        controller.stop()


@pytest.fixture
def env(tmp_path: Path, smtp: tuple[HeldSmtp, int]) -> dict[str, str]:
    content = tmp_path / "content"
    content.mkdir()
    (content / "defs.yml").write_text(DEFINITIONS)
    home = tmp_path / "home"
    land_messages(home / "landing" / "events", signup("u1", "2026-01-05T11:00:00Z"))
    return {
        **os.environ,
        "NUDGE_HOME": str(home),
        "NUDGE_CONTENT": str(content),
        "DAGSTER_HOME": str(home / "dagster"),
        "NUDGE_SMTP_HOST": "127.0.0.1",
        "NUDGE_SMTP_PORT": str(smtp[1]),
        "NUDGE_WAREHOUSE_WAIT_SECONDS": "1",
    }


def signup(user: str, at: str) -> list[dict[str, Any]]:
    return [
        {"type": "identify", "userId": user, "timestamp": at,
         "traits": {"email": f"{user}@example.com"}},
        {"type": "track", "userId": user, "event": "signed_up", "timestamp": at},
    ]  # fmt: skip


def start(env: dict[str, str], *args: str, at_a_terminal: bool = False) -> subprocess.Popen[str]:
    """`nudge ARGS`; ``at_a_terminal``: as a shell starts it in the foreground
    (``AT_A_TERMINAL``), so that ``press_ctrl_c`` reaches it and every process it starts."""
    return subprocess.Popen(
        [sys.executable, "-m", "nudge.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **(AT_A_TERMINAL if at_a_terminal else {}),
    )


def nudge(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "nudge.cli", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)


def run_in_send_step(
    env: dict[str, str], smtp: HeldSmtp, as_of: str = AS_OF
) -> subprocess.Popen[str]:
    """A `nudge run` caught while its SMTP server holds its first message."""
    run = start(env, "run", "--as-of", as_of)
    if not smtp.arrived.wait(180):
        run.kill()
        pytest.fail("the run never reached its send step: " + run.communicate()[1][-2000:])
    return run


def home_of(env: dict[str, str]) -> Path:
    return Path(env["NUDGE_HOME"])


def runs_table(env: dict[str, str]) -> dict[str, str]:
    with connect(home_of(env) / "warehouse.duckdb", read_only=True) as con:
        return dict(con.execute("select run_id, status from nudge.runs").fetchall())


def dagster_runs(env: dict[str, str]) -> tuple[dict[str, dg.DagsterRunStatus], set[str]]:
    """Every run's status and the runs holding (or waiting for) a pool slot."""
    with dg.DagsterInstance.from_config(str(home_of(env) / "dagster")) as instance:
        statuses = {run.run_id: run.status for run in instance.get_runs()}
        return statuses, instance.event_log_storage.get_concurrency_run_ids()


def test_a_killed_run_never_blocks_the_next_and_sigterm_stops_a_run_within_seconds(
    env: dict[str, str], smtp: tuple[HeldSmtp, int]
) -> None:
    handler, _ = smtp
    killed = run_in_send_step(env, handler)
    killed.kill()  # SIGKILL: nothing of the run gets to clean up
    killed.communicate()
    (dead_run,) = runs_table(env)
    assert runs_table(env)[dead_run] == "running"

    # The next run records the dead one as failed, frees its pool slot and gets to its own send
    # step (someone else signed up meanwhile); there, SIGTERM stops it within seconds.
    handler.arrived.clear()
    land_messages(home_of(env) / "landing" / "events", signup("u2", "2026-01-05T12:01:00Z"))
    stopped = run_in_send_step(env, handler, as_of="2026-01-05T12:02:00Z")
    stopped_at = time.monotonic()
    stopped.send_signal(signal.SIGTERM)
    out, err = stopped.communicate(timeout=60)
    assert time.monotonic() - stopped_at < 30  # the SMTP server would hold it for 60 s
    assert stopped.returncode != 0
    assert f"recorded as failed: runs {dead_run}" in out
    assert "Traceback" not in err

    handler.gate.set()
    last = nudge(env, "run", "--as-of", "2026-01-05T12:03:00Z", timeout=240)
    assert last.returncode == 0, last.stdout + last.stderr

    rows = runs_table(env)
    assert rows.pop(dead_run) == "failed"
    (stopped_run,) = [run_id for run_id, status in rows.items() if status == "failed"]
    assert sorted(rows.values()) == ["failed", "succeeded"]  # the stopped run, the last one
    statuses, holding_slots = dagster_runs(env)
    assert statuses.pop(dead_run) == dg.DagsterRunStatus.FAILURE
    assert statuses.pop(stopped_run) in {dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
    assert list(statuses.values()) == [dg.DagsterRunStatus.SUCCESS]
    assert holding_slots == set()


def press_ctrl_c(process: subprocess.Popen[str]) -> None:
    """What a terminal does on Ctrl-C: SIGINT to every process of the foreground group."""
    os.killpg(process.pid, signal.SIGINT)


def read_until(process: subprocess.Popen[str], prefix: str) -> str:
    """The process's output up to and including its first line starting with ``prefix``."""
    assert process.stdout is not None
    seen = ""
    for line in process.stdout:
        seen += line
        if line.startswith(prefix):
            return seen
    pytest.fail(f"no line starting with {prefix!r}: {seen}{process.communicate()[1][-2000:]}")


def test_ctrl_c_stops_a_run_with_one_line_and_dies_of_sigint(
    env: dict[str, str], smtp: tuple[HeldSmtp, int]
) -> None:
    handler, _ = smtp
    # During the dbt build: dbt prints a traceback when interrupted, and Dagster's helpers that
    # mirror the run's output get the SIGINT too; none of that reaches the terminal.
    run = start(env, "run", "--as-of", AS_OF, at_a_terminal=True)
    seen = read_until(run, "[2/5]")
    press_ctrl_c(run)
    out, err = run.communicate(timeout=60)
    out = seen + out
    assert run.returncode == -signal.SIGINT, out + err  # a shell shows 130
    assert "Traceback" not in out + err and "KeyboardInterrupt" not in out + err
    (stopped_run,) = runs_table(env)
    assert err.splitlines() == [
        f"stopped by Ctrl-C (SIGINT) in dbt_models: run {stopped_run} is recorded as failed;"
        " run `nudge run` again to carry on."
    ]
    assert f"run {stopped_run}: failed" in out  # the summary of what it did
    assert runs_table(env)[stopped_run] == "failed"

    # During the send step, held by the SMTP server: the step cannot let go, so the watchdog
    # records the run failed and exits 5 s after the signal.
    run = start(env, "run", "--as-of", "2026-01-05T12:01:00Z", at_a_terminal=True)
    if not handler.arrived.wait(180):
        run.kill()
        pytest.fail("the run never reached its send step: " + run.communicate()[1][-2000:])
    press_ctrl_c(run)
    out, err = run.communicate(timeout=60)
    assert run.returncode == 130, out + err
    assert "stopped by a signal; recorded as failed" in out
    assert "Traceback" not in out + err and "KeyboardInterrupt" not in out + err
    assert sorted(runs_table(env).values()) == ["failed", "failed"]

    handler.gate.set()
    last = nudge(env, "run", "--as-of", "2026-01-05T12:03:00Z", timeout=240)
    assert last.returncode == 0, last.stdout + last.stderr


def test_while_a_run_sends_other_runs_wait_or_are_refused_reads_say_so_and_a_pause_is_queued(
    env: dict[str, str], smtp: tuple[HeldSmtp, int], tmp_path: Path
) -> None:
    from nudge.core.warehouse.journey_controls import pending_paused_journeys

    handler, _ = smtp
    first = run_in_send_step(env, handler)
    home = home_of(env)
    # What the Dagster daemon does for a sensor's run: execute the job with its own executor.
    daemon_log = tmp_path / "dagster-job.log"
    daemon_run = start_dagster_job(env, daemon_log)
    try:
        second = nudge(env, "run", "--as-of", "2026-01-05T12:05:00Z", timeout=120)
        assert second.returncode == 3
        assert f"a run (pid {first.pid}, run " in second.stderr
        assert f"is in progress in {home}; wait for it to finish or stop it" in second.stderr
        assert "Traceback" not in second.stderr

        for read in (["segments"], ["profile", "u1"]):
            refused = nudge(env, *read, timeout=60)
            assert refused.returncode == 3, refused.stdout + refused.stderr
            assert f"a run (pid {first.pid}, run " in refused.stderr
            assert "holds the warehouse; try again when it has ended" in refused.stderr
            assert "Traceback" not in refused.stderr

        pause = nudge(env, "journeys", "pause", "welcome", timeout=60)
        assert pause.returncode == 0, pause.stderr
        assert "journey welcome: pause queued" in pause.stdout
        assert pending_paused_journeys(home / "control_requests") == {"welcome"}
        assert daemon_run.poll() is None  # waiting for the run lock
    finally:
        handler.gate.set()
        out, err = first.communicate(timeout=120)
        daemon_run.wait(timeout=240)
    assert first.returncode == 0, out + err
    assert daemon_run.returncode == 0, daemon_log.read_text()[-3000:]

    with connect(home / "warehouse.duckdb", read_only=True) as con:
        runs = con.execute(
            "select status, started_at, finished_at from nudge.runs order by started_at"
        ).fetchall()
        controls = con.execute("select journey, paused from nudge.journey_controls").fetchall()
    # the refused run left no row; the daemon's run started after the first one had finished
    assert [status for status, *_ in runs] == ["succeeded", "succeeded"]
    assert runs[1][1] >= runs[0][2]
    assert controls == [("welcome", True)]
    assert pending_paused_journeys(home / "control_requests") == frozenset()
    assert nudge(env, "segments").stdout.split() == ["signed_up", "1"]


def start_dagster_job(env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    """`dagster job execute` (its debug log goes to ``log``: it would fill a pipe)."""
    dagster = str(Path(sys.executable).parent / "dagster")
    command = [dagster, "job", "execute", "-m", "orchestration.definitions", "-j", "nudge_pipeline"]
    with open(log, "w") as out:
        return subprocess.Popen(
            command,
            env=env,
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
