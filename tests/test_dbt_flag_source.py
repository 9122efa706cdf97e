"""dbt adapters name their behavior flags' module without ``inspect.stack()`` (its cost grew to
most of a Postgres scenario's time in the suite: nudge.core.warehouse.dbt_flag_source)."""

from __future__ import annotations

import inspect
from typing import NoReturn

import pytest
from dbt_common.behavior_flags import Behavior

from nudge.core.warehouse.dbt import _dbt_runner_class


def _no_stack_walk(*args: object, **kwargs: object) -> NoReturn:
    raise AssertionError("inspect.stack() was called")


def test_a_behavior_flag_is_named_after_the_module_that_declared_it_without_inspect_stack(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _dbt_runner_class()  # what every in-process dbt invocation of nudge goes through
    monkeypatch.setattr(inspect, "stack", _no_stack_walk)
    flags = Behavior(
        [
            {"name": "declared_here", "default": False, "description": "a flag of this module"},
            {"name": "named", "default": False, "description": "d", "source": "dbt-elsewhere"},
        ],
        {},
    )
    # What dbt-common's own stack walk gives: the first module outside behavior_flags.
    assert flags.declared_here._behavior_change_event.flag_source == __name__
    assert flags.named._behavior_change_event.flag_source == "dbt-elsewhere"
