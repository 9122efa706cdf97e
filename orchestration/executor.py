"""The code location's executor: Dagster's in-process executor, one run per workspace at a time.

Runs the Dagster daemon launches (the sensor, the schedule, the UI) execute here, once per run in
the run's own process. Before any step (and so before any pool slot is claimed) the run takes the
workspace's run lock (``orchestration.run_lock``), tags itself with its pid and records dead runs as
failed (``orchestration.run_recovery``). A run launched while another holds the lock waits for it (up to
``LOCK_WAIT_SECONDS``, or until the run is terminated): the sensor has already moved its cursor
past the files that run is for, so refusing it would leave them unprocessed until the next file
lands. Past the wait it fails with the sentence naming the run in progress. When its steps are done, its ``nudge.runs`` row gets its final status.
``nudge run`` does the same around ``execute_in_process``, which brings its own executor.
"""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
from dagster._core.execution.context.system import PlanOrchestrationContext
from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._core.execution.retries import RetryMode
from dagster._core.execution.step_dependency_config import StepDependencyConfig
from dagster._utils.interrupts import check_captured_interrupt

from orchestration.location import load_location, lock_wait_seconds
from orchestration.run_lock import hold_run_lock
from orchestration.run_recovery import pid_tag, recover_dead_runs
from orchestration.stages import finish_unfinished_runs


class OneRunAtATimeExecutor(dg.Executor):
    def __init__(self, inner: dg.Executor):
        self._inner = inner

    @property
    def retries(self) -> RetryMode:
        return self._inner.retries

    @property
    def step_dependency_config(self) -> StepDependencyConfig:
        return self._inner.step_dependency_config

    def execute(
        self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan
    ) -> Iterator[dg.DagsterEvent]:
        workspace = load_location().workspace
        run_id = plan_context.run_id
        with hold_run_lock(
            workspace, run_id, wait_seconds=lock_wait_seconds(), stop=check_captured_interrupt
        ):
            plan_context.instance.add_run_tags(run_id, pid_tag())
            recover_dead_runs(plan_context.instance, workspace, own_run_id=run_id)
            failed = False
            try:
                for event in self._inner.execute(plan_context, execution_plan):
                    failed = failed or event.is_step_failure
                    yield event
            except BaseException:
                failed = True
                raise
            finally:
                status = "failed" if failed else "succeeded"
                finish_unfinished_runs(workspace, [run_id], status=status)


def one_run_at_a_time(base: dg.ExecutorDefinition, name: str) -> dg.ExecutorDefinition:
    """``base`` (Dagster's in-process or multiprocess executor) under the workspace's run lock.

    Under the multiprocess executor the lock is held by the run's orchestrating process; its step
    processes work under it (``orchestration.run_lock`` lets a holder's descendants through)."""
    creation = base.executor_creation_fn
    assert creation is not None

    def create(init_context: dg.InitExecutorContext) -> dg.Executor:
        return OneRunAtATimeExecutor(creation(init_context))

    return dg.ExecutorDefinition(
        name=name,
        config_schema=base.config_schema,
        requirements=base.get_requirements,
        executor_creation_fn=create,
    )


one_run_at_a_time_executor = one_run_at_a_time(
    dg.in_process_executor, "in_process_one_run_at_a_time"
)
