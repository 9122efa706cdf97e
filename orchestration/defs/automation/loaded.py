"""Where the landing sensor starts: after the landing files that earlier runs already loaded.

A sensor with no cursor (a fresh Dagster instance, or the UI opened for the first time on a
workspace that ``nudge demo`` or ``nudge run`` already ran in) would otherwise treat every landing
file as new and start a run, and send email, the moment the UI opens. ``raw.loaded_files`` says
which files were loaded, so the first tick takes the last of those as its cursor and only files
landed after it start runs.
"""

from __future__ import annotations

from collections.abc import Sequence

from nudge.core.landing.loader import not_yet_loaded
from nudge.core.warehouse.connection import connect, warehouse_exists
from nudge.core.workspace import Workspace


def last_loaded(workspace: Workspace, names: Sequence[str]) -> str | None:
    """The greatest of ``names`` (top-level landing file names) that ``raw.loaded_files`` lists,
    or None when none was loaded. Raises ``WarehouseBusy`` while a run holds the warehouse."""
    if not names or not warehouse_exists(workspace.warehouse_path):
        return None
    found = {name: workspace.events_landing_dir / name for name in names}
    with connect(workspace.warehouse_path, read_only=True) as con:
        loaded = set(found) - set(not_yet_loaded(con, found))
    return max(loaded, default=None)
