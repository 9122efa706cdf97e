"""Progress of a Dagster run by stage, one plain line at a time, as its events are stored.

Listens to the run's events (``DagsterInstance.add_event_listener``): the first step of a stage
prints ``[n/5] what the stage does``, a failed step prints its error's first line, a stage ends
with its time and how many assets it materialized; warnings steps log (a channel stopped early)
are kept as notes for the run's summary. Nothing from Dagster's own loggers is printed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import dagster as dg

from orchestration.defs.stage_order import stage_of_step
from orchestration.stages import Stage

if TYPE_CHECKING:
    from dagster._utils.error import SerializableErrorInfo

# How the engine says a step did not run because one before it failed.
ENGINE_SKIP_NOTE = "Dependencies for step"
# How many of a failure's detail lines a FAILED line is followed by.
MAX_FAILURE_DETAILS = 6


class StageProgress:
    def __init__(self, job: dg.JobDefinition, emit: Callable[[str], None]) -> None:
        self.job = job
        self.emit = emit
        self.current: Stage | None = None
        self.started = 0.0
        self.materialized = 0
        self.failed: list[str] = []
        self.notes: list[str] = []
        self._stage_failed = False

    def __call__(self, entry: dg.EventLogEntry) -> None:
        event = entry.dagster_event
        if event is None:
            if is_step_warning(entry):
                self.notes.append(entry.user_message.strip())
            return
        stage = stage_of_step(self.job, event.step_key) if event.step_key else None
        if event.event_type_value == "STEP_START" and stage is not None and stage != self.current:
            self.end_stage()
            self.current, self.started, self.materialized = stage, time.monotonic(), 0
            self.emit(f"[{stage.number}/{len(Stage)}] {stage.label}")
        elif event.event_type_value == "ASSET_MATERIALIZATION" and stage is not None:
            self.materialized += 1
        elif event.is_step_failure:
            message = failure_sentence(event.step_failure_data.error)
            self.failed.append(f"{event.step_key}: {message}")
            self._stage_failed = self._stage_failed or stage == self.current
            self.emit(f"      FAILED {event.step_key}: {message}")
            for detail in failure_details(event.step_failure_data.error):
                self.emit(f"        {detail}")

    def end_stage(self) -> None:
        if self.current is None:
            return
        seconds = time.monotonic() - self.started
        outcome = "failed" if self._stage_failed else f"{self.materialized} assets"
        self.emit(f"      done in {seconds:.1f} s ({outcome})")
        self.current, self._stage_failed = None, False


def is_step_warning(entry: dg.EventLogEntry) -> bool:
    """A warning a step's own code logged (the engine's notes on skipped steps excluded)."""
    return (
        entry.level >= logging.WARNING
        and bool(entry.step_key)
        and bool(entry.user_message)
        and not entry.user_message.startswith(ENGINE_SKIP_NOTE)
    )


def innermost(error: SerializableErrorInfo) -> SerializableErrorInfo:
    while error.cause is not None:
        error = error.cause
    return error


def failure_sentence(error: SerializableErrorInfo | None) -> str:
    """The first line of the innermost error, without Dagster's wrapper or the class name."""
    if error is None:
        return "failed"
    error = innermost(error)
    first = (error.message.strip().splitlines() or ["failed"])[0]
    head, colon, rest = first.partition(": ")
    named_class = bool(error.cls_name) and head.split(".")[-1] == error.cls_name
    return rest.strip() if colon and named_class and rest.strip() else first


def failure_details(error: SerializableErrorInfo | None) -> list[str]:
    """The indented lines under the innermost error's first (a dbt build's failed nodes and
    their messages), without dbt's macro call stack (``> in macro ...``), at most
    ``MAX_FAILURE_DETAILS``.

    dbt's own error lines go to the run's compute log, not the terminal
    (``orchestration.dagster_run``): these say which models failed and why.
    """
    if error is None:
        return []
    lines = innermost(error).message.strip().splitlines()[1:]
    details = [
        line.strip()
        for line in lines
        if line.startswith("  ") and line.strip() and not line.strip().startswith(">")
    ]
    if len(details) > MAX_FAILURE_DETAILS:
        more = len(details) - MAX_FAILURE_DETAILS + 1
        return [*details[: MAX_FAILURE_DETAILS - 1], f"({more} more lines in the run's log)"]
    return details
