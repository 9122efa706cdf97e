"""``nudge init DIR``: a new project, the way ``dbt init`` or ``dagster project scaffold`` make one.

The project holds ``nudge_project.yml`` (which marks its root, see ``nudge.core.workspace``), the
example definitions in ``content/``, a ``README.md``, the Dagster ``workspace.yaml`` and an empty
``workspace/`` for data. Nothing that is already there is overwritten.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from nudge.core.workspace import EXAMPLE_CONTENT_DIR, PROJECT_FILE, Workspace
from orchestration.instance import ensure_instance

PROJECT_MARKER = """\
# Marks a nudge project root (like dbt_project.yml): nudge commands run here or in a folder below
# use ./content for definitions and ./workspace for data, unless NUDGE_CONTENT / NUDGE_HOME (or
# --content / --home) say otherwise.
"""

DAGSTER_WORKSPACE = """\
load_from:
  - python_module:
      module_name: orchestration.definitions
      attribute: defs
      location_name: nudge
"""

GITIGNORE = "workspace/\n"

README = """\
# {name}

A nudge project: lifecycle messaging from your own warehouse.

- `content/` holds the definitions (segments, templates, journeys, topics, policies): start
  from the examples and edit them. `nudge validate` checks them.
- `workspace/` holds the data: landed events, the DuckDB warehouse, the Dagster instance.

Run every command in this folder (or below it):

    nudge demo                      # sample users and events, two runs, email to a local server
    nudge ingest events.ndjson      # land Segment-spec messages
    nudge run                       # one pipeline run at the current time
    nudge segments                  # segment sizes

The UI, with the sensor that starts a run when new files land:

    DAGSTER_HOME=$PWD/workspace/dagster dagster dev -w workspace.yaml
"""


def init_project(directory: Path) -> list[Path]:
    """Create a project in ``directory``; the paths created. Raises ``ValueError`` when any of
    them is already there (nothing is written then)."""
    directory = directory.resolve()
    files = {
        directory / PROJECT_FILE: PROJECT_MARKER,
        directory / "workspace.yaml": DAGSTER_WORKSPACE,
        directory / "README.md": README.format(name=directory.name),
        directory / ".gitignore": GITIGNORE,
    }
    content = directory / "content"
    existing = [path for path in [*files, content] if path.exists()]
    if existing:
        names = ", ".join(path.name for path in existing)
        raise ValueError(
            f"{directory} already holds {names}; choose a new or empty directory for the project."
        )
    directory.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        path.write_text(text)
    shutil.copytree(EXAMPLE_CONTENT_DIR, content)
    workspace = Workspace(home=directory / "workspace", content_dir=content).ensure()
    ensure_instance(workspace)
    return [*files, content, workspace.home]
