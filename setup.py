"""Packaging beyond pyproject.toml: the dbt project and the example content ship in the wheel.

They stay at the top of the repository for development (``dbt_project/``, ``content/``); a built
wheel holds them as ``nudge/dbt_project`` and ``nudge/example_content``, where
``nudge.core.workspace`` finds them when there is no repository around the installed package.
"""

from setuptools import find_packages, setup

BUNDLED = {"nudge.dbt_project": "dbt_project", "nudge.example_content": "content"}
# What dbt writes into its project folder during development is not part of the project.
DBT_OUTPUT = ["target/**/*", "logs/**/*", "dbt_packages/**/*"]

setup(
    packages=[
        *find_packages(include=["nudge*", "journeys*", "senders*", "orchestration*", "collector*"]),
        *BUNDLED,
    ],
    package_dir=BUNDLED,
    package_data={
        "nudge.devtools.bench": ["content/*.yml"],
        "collector": ["templates/*.html"],
        "nudge.dbt_project": ["**/*"],
        "nudge.example_content": ["*.yml"],
    },
    exclude_package_data={"nudge.dbt_project": DBT_OUTPUT},
)
