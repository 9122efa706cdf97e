"""A project made by `nudge init`, found from its root, and nudge installed from its wheel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nudge.devtools.free_port import free_port

REPO = Path(__file__).resolve().parent.parent


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any NUDGE_/DAGSTER_ setting: the project decides."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("NUDGE_", "DAGSTER_"))}
    return {**base, **extra}


def nudge(cwd: Path, *args: str, command: str | None = None) -> subprocess.CompletedProcess[str]:
    program = [command] if command else [sys.executable, "-m", "nudge.cli"]
    env = clean_env(PYTHONPATH=str(REPO)) if command is None else clean_env()
    return subprocess.run(
        [*program, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )


def test_outside_a_project_commands_say_so_and_create_nothing(tmp_path: Path) -> None:
    result = nudge(tmp_path, "segments")
    assert result.returncode == 2
    assert "no nudge project" in result.stderr and "nudge init" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []  # no ./workspace made by accident


def test_init_makes_a_project_found_from_any_folder_inside_it(tmp_path: Path) -> None:
    project = tmp_path / "shop"
    result = nudge(tmp_path, "init", "shop")
    assert result.returncode == 0, result.stderr
    for name in ("nudge_project.yml", "README.md", "workspace.yaml", "content/journeys.yml"):
        assert (project / name).is_file(), name

    inside = nudge(project / "content", "validate")
    assert inside.returncode == 0, inside.stderr
    assert f"{project / 'content'}:" in inside.stdout and "all valid" in inside.stdout
    assert not (project / "content" / "workspace").exists()

    again = nudge(tmp_path, "init", "shop")
    assert again.returncode == 2 and "already holds" in again.stderr


@pytest.mark.slow
def test_the_built_wheel_installs_outside_the_repository_and_runs_init_then_demo(
    tmp_path: Path,
) -> None:
    wheels, venv, project = tmp_path / "wheels", tmp_path / "venv", tmp_path / "shop"
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels)]
    # from the tracked files only: a build/ folder left in a checkout by an earlier build would
    # otherwise be reused, with files the checkout no longer has
    source = tmp_path / "source"
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z"], check=True, capture_output=True, text=True
    ).stdout
    for name in filter(None, listed.split("\0")):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    subprocess.run([*pip_wheel, str(source)], check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    [wheel] = wheels.glob("nudge-*.whl")
    pip_install = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)]
    subprocess.run(pip_install, check=True, cwd=tmp_path, env=clean_env(), capture_output=True)
    installed = str(venv / "bin" / "nudge")

    assert nudge(tmp_path, "init", "shop", command=installed).returncode == 0
    demo = subprocess.run(
        [installed, "demo"],
        cwd=project,
        env=clean_env(NUDGE_SMTP_PORT=str(free_port())),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    received = next(line for line in demo.stdout.splitlines() if line.startswith("emails received"))
    assert int(received.rsplit(":", 1)[1]) > 0
    assert (project / "workspace" / "warehouse.duckdb").exists()
    assert str(REPO) not in demo.stdout  # nothing came from the repository
