"""One pipeline run through Dagster, in this process, recorded in the workspace's instance.

The run holds the workspace's run lock (``orchestration.run_lock``). Before the run starts, runs
that died are recorded as failed and their pool slots freed (``orchestration.run_recovery``); after it
ends, its ``nudge.runs`` row gets its final status even when a step failed or a signal stopped
it.

SIGINT and SIGTERM: during a run Dagster only notes them and raises them inside step code, so a
run in a step usually stops within moments and is recorded as failed. But a run waiting for a
pool slot runs no step code and would never notice, and a step's clean-up can take long (an SMTP
QUIT to a server that does not answer waits for the socket timeout). So if the run has not ended
``INTERRUPT_GRACE_SECONDS`` after the signal, a watchdog records it failed, frees its pool slots
and ends the process (DuckDB's write-ahead log makes that as safe as any crash). The outcome
names the signal that stopped the run, so the CLI can say so in one line.

Ctrl-C in a terminal sends SIGINT to every process of the foreground group, the helpers Dagster
starts to mirror the run's stdout and stderr included: each would die printing a
``KeyboardInterrupt`` traceback. They start before the run's first event that captures logs, so
until then the main thread blocks SIGINT, and they inherit the block (a blocked signal stays
pending in them: Dagster ends them with SIGTERM). The watchdog thread does not block it, so a
SIGINT in that window still reaches the process and Dagster's handler at once.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout, suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, TextIO

from nudge.core.workspace import Workspace
from orchestration.run_lock import hold_run_lock

if TYPE_CHECKING:
    import dagster as dg

PIPELINE_JOB = "nudge_pipeline"
# The run's progress is printed by stage (``orchestration.run_progress``); the console logger
# would print every engine event, in colour: only for ``--verbose``.
QUIET_LOGGING = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
VERBOSE_LOGGING = {"loggers": {"console": {"config": {"log_level": "DEBUG"}}}}
INTERRUPT_GRACE_SECONDS = 5.0
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def run_through_dagster(
    workspace: Workspace,
    as_of: datetime,
    *,
    run_id: str | None = None,
    progress: Callable[[str], None] | None = None,
    verbose: bool = False,
    full_refresh: bool = False,
) -> RunOutcome:
    """Execute the whole asset graph at ``as_of`` as Dagster run ``run_id`` (default: a new id),
    holding the workspace's run lock; the environment must point at ``workspace``.

    ``progress`` gets a line as each stage starts and ends; ``verbose`` adds Dagster's own log;
    ``full_refresh`` tags the run so that dbt rebuilds every model from scratch.
    """
    from orchestration.run_context import FULL_REFRESH_TAGS, as_of_tag

    run_id = run_id or str(uuid.uuid4())  # Dagster's own run ids are uuid4 strings too
    tags = {**as_of_tag(as_of), **(FULL_REFRESH_TAGS if full_refresh else {})}
    with hold_run_lock(workspace, run_id):
        try:
            return _run_locked(workspace, tags, run_id, progress, verbose)
        finally:  # an exception or a signal: the row must not stay `running`
            from orchestration.stages import finish_unfinished_runs

            finish_unfinished_runs(workspace, [run_id], status="failed")


@dataclass
class RunOutcome:
    run_id: str
    success: bool
    failed_steps: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # SIGINT or SIGTERM when one stopped the run.
    stopped_by: signal.Signals | None = None

    def __bool__(self) -> bool:
        return self.success


def _run_locked(
    workspace: Workspace,
    tags: dict[str, str],
    run_id: str,
    progress: Callable[[str], None] | None,
    verbose: bool,
) -> RunOutcome:
    import dagster as dg

    from orchestration.instance import ensure_instance
    from orchestration.run_recovery import pid_tag, recover_dead_runs
    from orchestration.stages import finish_unfinished_runs

    ensure_instance(workspace)
    with dg.DagsterInstance.get() as instance:
        dead = recover_dead_runs(instance, workspace, own_run_id=run_id)
        if progress and dead:
            progress(f"  recorded as failed: runs {', '.join(dead)} (their process is gone)")

        from orchestration.definitions import defs
        from orchestration.run_progress import StageProgress

        job = defs.resolve_job_def(PIPELINE_JOB)
        with _stdout_kept_from_the_log_mirror() as terminal:

            def emit(line: str) -> None:
                if progress is not None:
                    with redirect_stdout(terminal):
                        progress(line)

            stages = StageProgress(job, emit)
            instance.add_event_listener(run_id, stages)
            instance.add_event_listener(run_id, _unblock_sigint_once_logs_are_captured)
            with (
                signals_end_the_run(instance, workspace, run_id, terminal) as stop,
                _sigint_blocked(),
            ):
                result = job.execute_in_process(
                    run_config=VERBOSE_LOGGING if verbose else QUIET_LOGGING,
                    instance=instance,
                    run_id=run_id,
                    tags={**tags, **pid_tag()},
                    raise_on_error=False,
                )
            stages.end_stage()
    finish_unfinished_runs(workspace, [run_id], status="succeeded" if result.success else "failed")
    return RunOutcome(run_id, result.success, stages.failed, stages.notes, stop.signal)


@contextmanager
def _stdout_kept_from_the_log_mirror() -> Iterator[TextIO]:
    """Point file descriptor 1 at /dev/null for the run and yield the stdout it was.

    Dagster captures the run's stdout into its compute log (what the UI shows) and starts a
    ``tail`` that echoes the log back to the stdout it found. What steps print there (dbt's own
    error lines, the traceback dbt prints when Ctrl-C stops it) is for the log, not the
    terminal: the run's progress lines and summary say what happened. Progress lines are written
    to the stdout yielded.
    """
    try:
        sys.stdout.flush()
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (a test's captured output)
        yield sys.stdout
        return
    terminal = os.fdopen(
        os.dup(fd), "w", buffering=1, encoding=sys.stdout.encoding, errors=sys.stdout.errors
    )
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
        yield terminal
    finally:
        with suppress(OSError, ValueError):  # a reader that went away (`nudge run | head`)
            sys.stdout.flush()
        with suppress(OSError, ValueError):
            terminal.flush()
        os.dup2(terminal.fileno(), fd)
        with suppress(OSError, ValueError):
            terminal.close()


@contextmanager
def _sigint_blocked() -> Iterator[None]:
    """Block SIGINT in this (the main) thread until the listener below lifts it, and restore the
    thread's signal mask afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _unblock_sigint_once_logs_are_captured(entry: dg.EventLogEntry) -> None:
    """Lift ``_sigint_blocked`` at the event that follows the start of Dagster's log mirroring
    (or at the first step's start, should it not come), in the thread that runs the plan."""
    event = entry.dagster_event
    if event is None or threading.current_thread() is not threading.main_thread():
        return
    if event.event_type_value in {"LOGS_CAPTURED", "STEP_START"}:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


@dataclass
class StopSignal:
    """The first of SIGINT and SIGTERM the process received during the run, if any."""

    signal: signal.Signals | None = None

    def note(self, signal_numbers: bytes) -> set[int]:
        """Keep the first stop signal among those the wakeup fd gave; return the stop signals."""
        stops = STOP_SIGNALS & set(signal_numbers)
        if stops and self.signal is None:
            self.signal = signal.Signals(min(stops))
        return stops


@contextmanager
def signals_end_the_run(
    instance: dg.DagsterInstance, workspace: Workspace, run_id: str, out: TextIO
) -> Iterator[StopSignal]:
    """End the process when SIGINT or SIGTERM has not ended the run within the grace period;
    the signal received is in the ``StopSignal`` yielded, and ``out`` says so when the watchdog
    ends the process.

    Dagster replaces the handlers during a run, so the watchdog learns of a signal through
    Python's wakeup fd, which every handled signal is written to whoever handles it.
    """
    stop = StopSignal()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    # Dagster leaves SIGTERM handled as SIGINT (KeyboardInterrupt) after the run.
    sigterm_handler = signal.getsignal(signal.SIGTERM)
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if not select.select([reader], [], [], 0.5)[0]:
                continue
            stops = stop.note(reader.recv(64))
            if stops and not done.wait(INTERRUPT_GRACE_SECONDS):
                stop_run_now(instance, workspace, run_id, out)
                os._exit(128 + min(stops))

    watcher = threading.Thread(target=watch, name="nudge-signal-watchdog", daemon=True)
    watcher.start()
    try:
        yield stop
    finally:
        done.set()
        watcher.join()
        signal.signal(signal.SIGTERM, sigterm_handler)
        signal.set_wakeup_fd(previous)
        reader.setblocking(False)
        with suppress(BlockingIOError):  # a signal the watchdog had not read yet
            stop.note(reader.recv(64))
        reader.close()
        writer.close()


def stop_run_now(
    instance: dg.DagsterInstance, workspace: Workspace, run_id: str, out: TextIO
) -> None:
    """Record a run that did not stop on a signal as failed and free its pool slots."""
    from orchestration.stages import finish_unfinished_runs

    run = instance.get_run_by_id(run_id)
    if run is not None and not run.is_finished:
        instance.report_run_failed(run, message="Stopped by a signal; the run did not end.")
    instance.event_log_storage.free_concurrency_slots_for_run(run_id)
    finish_unfinished_runs(workspace, [run_id], status="failed")
    print(f"dagster run {run_id}: stopped by a signal; recorded as failed", file=out, flush=True)
