"""A cheap way for dbt-common to name the module that declared an adapter's behavior flag.

dbt creates a new adapter at every invocation (``dbtRunner.invoke`` registers one), and the
adapter renders each of its behavior flags. dbt-common (1.x) names the module behind each flag
with ``inspect.stack()``, evaluated even when the flag names its source: a source line read for
every frame of the stack, and, for a frame of code run by ``exec`` (the bootstrap of a
pytest-xdist worker, a multiprocessing child, a Dagster step process), a scan of every module in
``sys.modules`` for a file that does not exist. Measured in a test worker with the suite's
modules imported: 50 to 80 ms per flag, a few flags per adapter, at every build, compile and
parse. Late in the suite it was most of every Postgres scenario's time.

The name wanted is the module of the first frame outside dbt-common's ``behavior_flags``, which
each frame's globals already hold: ``use_frame_globals_for_flag_sources`` makes dbt-common read
it there. The flag's source only labels dbt's "behavior change" log event.
"""

from __future__ import annotations

import sys


def _calling_module_name() -> str:
    """The module of the nearest frame outside dbt-common's ``behavior_flags`` (what
    ``BehaviorFlagRendered._default_source`` returns), from the frames' globals."""
    from dbt_common import behavior_flags

    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__")
        if name and name != behavior_flags.__name__:
            return name
        frame = frame.f_back
    return "Unknown"


def use_frame_globals_for_flag_sources() -> None:
    """Make dbt-common name a behavior flag's module from frame globals (idempotent)."""
    from dbt_common.behavior_flags import BehaviorFlagRendered

    BehaviorFlagRendered._default_source = staticmethod(_calling_module_name)
