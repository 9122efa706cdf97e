"""``nudge demo``: a deterministic sample workspace, run end to end, with real email over SMTP."""

from __future__ import annotations

import errno
import os
import shutil
import socket
from datetime import datetime, timedelta

from nudge.core.reports import run_summary
from nudge.core.workspace import Workspace
from nudge.devtools.sample.generator import write_sample_workspace
from nudge.devtools.smtp_sink import SmtpSink, count_messages
from orchestration.dagster_run import run_through_dagster
from senders.unsubscribe import LOCAL_PUBLIC_URL, local_secret_key

# Naive UTC: the sample's 30 days end here, mid-afternoon in Europe and morning in the Americas,
# so that quiet hours hold back only part of the first run's email.
DEMO_END = datetime(2026, 11, 1, 15, 0)
DEMO_USERS = 3000
DEMO_DAYS = 30


class DemoPortInUse(RuntimeError):
    """The port of the demo's local SMTP server is taken by another process."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(
            f"port {port} on {host} is in use, and the demo's local SMTP server needs it: stop"
            f" what listens there, or set NUDGE_SMTP_PORT to a free port (e.g."
            f" NUDGE_SMTP_PORT={port + 1} nudge demo)."
        )


def check_port_free(host: str, port: int) -> None:
    """Raise ``DemoPortInUse`` when ``host:port`` cannot be bound; before anything is wiped."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise DemoPortInUse(host, port) from None
            raise


def holds_data(workspace: Workspace) -> bool:
    """Whether ``reset`` would delete something: a warehouse, landed files or received mail."""
    if workspace.warehouse_path.exists():
        return True
    folders = (workspace.landing_dir, workspace.home / "mailbox")
    return any(
        path.is_file() for folder in folders if folder.is_dir() for path in folder.rglob("*")
    )


def reset(workspace: Workspace) -> None:
    """Start from an empty landing area and warehouse so the demo is the same every time."""
    for path in (workspace.landing_dir, workspace.home / "mailbox"):
        shutil.rmtree(path, ignore_errors=True)
    workspace.warehouse_path.unlink(missing_ok=True)
    workspace.ensure()


def print_table(title: str, rows: list[dict[str, object]]) -> None:
    print(f"\n{title}")
    if not rows:
        print("  (none)")
    for row in rows:
        print(
            "  "
            + "  ".join(
                f"{value!s:>10}" if isinstance(value, int) else f"{value!s:24}"
                for value in row.values()
            )
        )


def run_demo(workspace: Workspace) -> int:
    """Wipe ``workspace`` (callers ask first: ``holds_data``), fill it with the sample, run twice."""
    host = os.environ.setdefault("NUDGE_SMTP_HOST", "127.0.0.1")
    port = int(os.environ.setdefault("NUDGE_SMTP_PORT", "8025"))
    check_port_free(host, port)
    reset(workspace)
    os.environ.setdefault("NUDGE_EMAIL_PROVIDER", "smtp")
    # Live SMTP needs a real key and a public URL: the demo's own, a random key kept in the
    # workspace (its links verify across runs) and the local address.
    os.environ.setdefault("NUDGE_SECRET_KEY", local_secret_key(workspace.home / "secret_key"))
    os.environ.setdefault("NUDGE_PUBLIC_URL", LOCAL_PUBLIC_URL)
    maildir = workspace.home / "mailbox"
    print(f"generating {DEMO_USERS} users over {DEMO_DAYS} days into {workspace.landing_dir}")
    landed = write_sample_workspace(
        workspace.events_landing_dir, users=DEMO_USERS, days=DEMO_DAYS, end=DEMO_END
    )
    print(f"landed {landed} messages")
    sink = SmtpSink(host, port, maildir)
    sink.start()
    try:
        ok = True
        for as_of in (DEMO_END, DEMO_END + timedelta(days=2)):
            ok = run_through_dagster(workspace, as_of, progress=print) and ok
    finally:
        sink.stop()
    summary = run_summary(workspace)
    print_table("segment sizes", summary["segments"])
    print_table("journey entries", summary["journey_entries"])
    print_table("messages by status", summary["messages"])
    print(f"\nemails received by the local SMTP server ({host}:{port}): {count_messages(maildir)}")
    print(f"  stored as .eml files in {maildir}")
    print(f"warehouse: {workspace.warehouse_path} (duckdb; try `nudge profile <user_id>`)")
    print("each email is in the acme layout: `nudge preview welcome_email --user <user_id>`")
    print("see the asset graph and runs: `make ui`, then open http://127.0.0.1:3000")
    return 0 if ok else 1
