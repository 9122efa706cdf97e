"""Ordinary situations of the command line get a sentence, not a traceback (issue 14)."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from nudge.cli.main import main

GOOD = """
segments:
  - name: pro
    condition: {attribute: {name: plan, eq: pro}}
"""


def nudge(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nudge.cli", *args],
        env={**os.environ, "NUDGE_HOME": str(tmp_path / "home"),
             "NUDGE_CONTENT": str(tmp_path / "content"), **env},
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.fixture
def used_workspace(tmp_path: Path) -> Path:
    """A workspace holding a landed file, as an earlier demo or ingest leaves it."""
    (tmp_path / "content").mkdir()
    (tmp_path / "content" / "defs.yml").write_text(GOOD)
    landed = tmp_path / "home" / "landing" / "events" / "earlier.parquet"
    landed.parent.mkdir(parents=True)
    landed.write_bytes(b"kept")
    return landed


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_demo_without_a_terminal_refuses_to_wipe_a_used_workspace(
    tmp_path: Path, used_workspace: Path
) -> None:
    result = nudge(tmp_path, "demo")
    assert result.returncode == 1
    assert "nudge demo --yes" in result.stderr and "nothing was changed" in result.stderr
    assert "Traceback" not in result.stderr
    assert used_workspace.read_bytes() == b"kept"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_demo_asks_before_wiping_and_no_keeps_the_workspace(
    tmp_path: Path, used_workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    monkeypatch.setenv("NUDGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NUDGE_CONTENT", str(tmp_path / "content"))
    assert main(["demo"]) == 1
    out = capsys.readouterr()
    assert "Continue? [y/N]" in out.out
    assert "nothing was changed" in out.err
    assert used_workspace.read_bytes() == b"kept"


def test_demo_with_its_port_in_use_names_the_variable_and_wipes_nothing(
    tmp_path: Path, used_workspace: Path, busy_port: int
) -> None:
    result = nudge(tmp_path, "demo", "--yes", NUDGE_SMTP_PORT=str(busy_port))
    assert result.returncode == 2, result.stderr
    assert f"port {busy_port}" in result.stderr and "NUDGE_SMTP_PORT" in result.stderr
    assert "Traceback" not in result.stderr
    assert used_workspace.read_bytes() == b"kept"


@pytest.mark.parametrize("args", [["segments"], ["profile", "u1"], ["segments", "members", "pro"]])
def test_read_commands_before_any_run_say_what_to_do_and_create_nothing(
    tmp_path: Path, args: list[str]
) -> None:
    (tmp_path / "content").mkdir()
    (tmp_path / "content" / "defs.yml").write_text(GOOD)
    result = nudge(tmp_path, *args)
    assert result.returncode == 1
    assert "run `nudge run` (or `nudge demo` for sample data) first" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "home").exists()


def test_makefile_demo_runs_unattended() -> None:
    makefile = (Path(__file__).parents[1] / "Makefile").read_text()
    assert "nudge demo --yes" in makefile


@pytest.mark.parametrize(
    ("args", "env", "said"),
    [
        (("validate",), {"NUDGE_HOME": "{tmp}/a-file/home"}, "cannot use {tmp}/a-file/home: Not a directory"),
        (("segments",), {"NUDGE_WAREHOUSE": "postgres",
                         "NUDGE_POSTGRES_URL": "postgresql://u:p@127.0.0.1:1/db"},
         "cannot connect to PostgreSQL at 127.0.0.1:1, database db (NUDGE_POSTGRES_URL)"),
        (("serve", "--port", "70000"), {}, "70000 is not a port number (1-65535)"),
        (("segments", "members", "pro", "--limit", "9" * 30), {}, "--limit: must be at most"),
        (("scenario", "run", "{tmp}"), {}, "cannot use {tmp}: Is a directory"),
        (("run", "--as-of", "+1d"), {}, "--as-of: '+1d' is not an ISO 8601 time"),
        (("run", "--as-of", "9999-12-31T00:00:00Z"), {},
         "--as-of 9999-12-31T00:00:00Z is in the future"),
        (("segments", "upload", "vip", "{tmp}/a-file", "--at", "soon"), {},
         "--at: 'soon' is not an ISO 8601 time"),
        (("validate",), {"NUDGE_CONTENT": "{tmp}/a-file"},
         "{tmp}/a-file: is a file, not a folder (set NUDGE_CONTENT"),
        (("serve", "--host", "999.1.1.1", "--port", "8999"), {"NUDGE_WRITE_KEYS": "k"},
         "cannot listen on 999.1.1.1:8999: Name or service not known; choose another --host"),
    ],
    ids=["home-under-a-file", "postgres-unreachable", "port-out-of-range", "limit-too-large",
         "scenario-folder", "as-of-not-a-time", "as-of-in-the-future", "at-not-a-time",
         "content-is-a-file", "host-not-of-this-machine"],
)  # fmt: skip
def test_a_mistake_in_a_path_a_setting_or_an_argument_is_a_sentence(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], said: str
) -> None:
    (tmp_path / "a-file").write_text("")
    (tmp_path / "content").mkdir()
    (tmp_path / "content" / "defs.yml").write_text(GOOD)
    fill = {k: v.replace("{tmp}", str(tmp_path)) for k, v in env.items()}
    result = nudge(tmp_path, *(a.replace("{tmp}", str(tmp_path)) for a in args), **fill)
    assert result.returncode == 2, result.stderr
    assert said.replace("{tmp}", str(tmp_path)) in result.stderr
    assert "Traceback" not in result.stderr


def test_output_cut_short_by_a_pipe_is_no_traceback(tmp_path: Path) -> None:
    """``nudge schema | head -1``: the reader has gone before the output is written (here its
    end of the pipe is closed before the command starts writing)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "nudge.cli", "schema"],
        env={**os.environ, "NUDGE_HOME": str(tmp_path / "home")},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    stderr = process.stderr.read()
    assert process.wait(timeout=120) == 1
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
