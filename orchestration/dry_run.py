"""``nudge run --dry-run``: what a run at ``as_of`` would do, without doing it.

The workspace's warehouse file and landing area are copied into a temporary workspace, and the
same stages a real run takes (``orchestration.stages.run_pipeline``) run there, with capturing
providers on every channel. The report is read back from the copy: the messages handed to a
provider, the ones a policy decided otherwise (with the reason), the ones held for a later run
(with the policy that holds them: journey paused or quiet hours, as ``senders.policy`` decides
again), and the entries that started, exited or completed. The real workspace is only read.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from nudge.core.clock import to_utc_naive
from nudge.core.dsl.spec import Content, Window
from nudge.core.dsl.walk import iter_steps
from nudge.core.warehouse.connection import connect
from nudge.core.workspace import Workspace
from orchestration.earlier_as_of import EarlierThanLastRun
from orchestration.stages import (
    latest_succeeded_as_of,
    new_run_id,
    prepare_project,
    run_pipeline,
)
from senders.capture import CapturingProvider
from senders.policy import evaluate_policies

CHANNELS = ("email", "sms", "push", "webhook", "slack", "in_app")


@dataclass(frozen=True)
class PlannedMessage:
    user_id: str
    journey: str
    step: str
    channel: str
    template: str
    address: str


@dataclass(frozen=True)
class Decision:
    """A message that would not go out in this run, and why (``status`` is a ledger status, or
    ``held`` when a policy keeps it for a later run)."""

    user_id: str
    journey: str
    step: str
    channel: str
    template: str
    status: str
    reason: str


@dataclass(frozen=True)
class EntryChange:
    user_id: str
    journey: str
    action: str  # entered | exited | completed
    step: str | None
    detail: str | None


@dataclass(frozen=True)
class WindowWait:
    """An entry held at a ``window`` step until its window opens."""

    user_id: str
    journey: str
    step: str
    opens_at: datetime | None


@dataclass
class DryRunReport:
    as_of: datetime
    sends: list[PlannedMessage] = field(default_factory=list)
    not_sent: list[Decision] = field(default_factory=list)
    entries: list[EntryChange] = field(default_factory=list)
    window_waits: list[WindowWait] = field(default_factory=list)

    def journey_summaries(self) -> list[str]:
        """One line per journey: entries changing, messages that would go out, and the others
        counted by status and reason."""
        journeys = sorted(
            {m.journey for m in self.sends}
            | {d.journey for d in self.not_sent}
            | {e.journey for e in self.entries}
            | {w.journey for w in self.window_waits}
        )
        lines = []
        for journey in journeys:
            actions = Counter(e.action for e in self.entries if e.journey == journey)
            channels = Counter(m.channel for m in self.sends if m.journey == journey)
            others = Counter(
                f"{d.status} ({d.reason})" for d in self.not_sent if d.journey == journey
            )
            parts = [
                ", ".join(f"{n} {a}" for a, n in sorted(actions.items())) or "no entries changing",
                "would send "
                + (", ".join(f"{n} {c}" for c, n in sorted(channels.items())) or "nothing"),
            ]
            others.update(
                f"waiting for window {w.step}" for w in self.window_waits if w.journey == journey
            )
            if others:
                parts.append(", ".join(f"{n} {what}" for what, n in others.most_common()))
            lines.append(f"  {journey}: " + "; ".join(parts))
        return lines

    def render(self) -> str:
        lines = [f"dry run at {self.as_of.isoformat()}Z: nothing was sent or changed"]
        lines.append("per journey:")
        lines += self.journey_summaries() or ["  (no journey would do anything)"]
        lines.append("")
        lines.append(f"would send {len(self.sends)} messages:")
        lines += [
            f"  {m.user_id}  {m.journey}/{m.step}  {m.channel} {m.template} -> {m.address}"
            for m in self.sends
        ]
        lines.append(f"would not send {len(self.not_sent)} messages:")
        lines += [
            f"  {d.user_id}  {d.journey}/{d.step}  {d.channel} {d.template}: {d.status} ({d.reason})"
            for d in self.not_sent
        ]
        lines.append(f"journey entries changing: {len(self.entries)}")
        lines += [
            f"  {e.user_id}  {e.journey}: {e.action}"
            + (f" at {e.step}" if e.step else "")
            + (f" ({e.detail})" if e.detail else "")
            for e in self.entries
        ]
        lines.append(f"entries waiting for a send window: {len(self.window_waits)}")
        lines += [
            f"  {w.user_id}  {w.journey}/{w.step}: window opens "
            + (f"{w.opens_at.isoformat()}Z" if w.opens_at else "later")
            for w in self.window_waits
        ]
        return "\n".join(lines)


def window_steps(content: Content) -> list[tuple[str, str]]:
    """(journey, step id) of every ``window`` step."""
    return [
        (journey.name, step.id)
        for journey in content.journeys
        for _, step in iter_steps(journey.steps)
        if isinstance(step.action, Window)
    ]


def _window_waits(con: Any, windows: list[tuple[str, str]]) -> list[tuple[Any, ...]]:
    """Active entries sitting at one of ``windows`` (journey, step id), with when it opens."""
    if not windows:
        return []
    return con.execute(
        """select e.user_id, e.journey, e.current_step, e.next_wake_at
           from nudge.journey_entries e
           semi join (select unnest(cast(? as varchar[])) as journey, unnest(cast(? as varchar[])) as step) w
                on w.journey = e.journey and w.step = e.current_step
           where e.status = 'active' order by 2, 3, 1""",
        [[journey for journey, _ in windows], [step for _, step in windows]],
    ).fetchall()


def copy_workspace(source: Workspace, target_home: Path) -> Workspace:
    """A workspace at ``target_home`` holding copies of ``source``'s warehouse and landing area."""
    target = Workspace(home=target_home, content_dir=source.content_dir)
    target.ensure()
    # the warehouse, its WAL, and the hand-over journal a stopped run may have left beside it
    for suffix in ("", ".wal", ".handovers", ".handovers-wal"):
        path = Path(f"{source.warehouse_path}{suffix}")
        if path.exists():
            shutil.copy2(path, f"{target.warehouse_path}{suffix}")
    if source.landing_dir.exists():
        shutil.copytree(source.landing_dir, target.landing_dir, dirs_exist_ok=True)
    return target


def dry_run(workspace: Workspace, content: Content, as_of: datetime) -> DryRunReport:
    """What a pipeline run at ``as_of`` would send, skip and change; see the module docstring."""
    as_of = to_utc_naive(as_of)
    run_id = new_run_id(as_of, "dry-run")
    latest = latest_succeeded_as_of(workspace)
    if latest is not None and as_of < latest:  # refused before copying anything
        raise EarlierThanLastRun(as_of, latest)
    providers = {channel: CapturingProvider(channel) for channel in CHANNELS}
    with tempfile.TemporaryDirectory(prefix="nudge-dry-run-") as tmp:
        copy = copy_workspace(workspace, Path(tmp) / "home")
        project = prepare_project(copy, content)
        run_pipeline(copy, content, project, providers, as_of=as_of, run_id=run_id)
        report = _read_report(copy, content, as_of, run_id)
    report.sends = [
        PlannedMessage(m.user_id, m.journey, m.step, m.channel, m.template, m.address)
        for provider in providers.values()
        for m in provider.messages
    ]
    report.sends.sort(key=lambda m: (m.journey, m.step, m.user_id))
    return report


def _read_report(
    workspace: Workspace, content: Content, as_of: datetime, run_id: str
) -> DryRunReport:
    with connect(workspace.warehouse_path) as con:
        decided = con.execute(
            """select user_id, journey, step, channel, template, status, coalesce(reason, '')
               from nudge.delivery_ledger where run_id = ? and status <> 'sent'
               order by 2, 3, 1""",
            [run_id],
        ).fetchall()
        # Rows still pending after the send: asked again, the policies say why they wait.
        still_pending = evaluate_policies(con, as_of=as_of, content=content)
        held = [
            (
                row["user_id"], row["journey"], row["step"], row["channel"], row["template"],
                "held", f"{row['reason'] or 'pending'}: decided again at the next run",
            )
            for row in still_pending.iter_rows(named=True)
        ]  # fmt: skip
        waits = _window_waits(con, window_steps(content))
        changes = con.execute(
            """select user_id, journey, action, coalesce(to_step, from_step), detail
               from nudge.journey_transitions
               where run_id = ? and action in ('entered', 'exited', 'completed')
               order by journey, user_id, action""",
            [run_id],
        ).fetchall()
    return DryRunReport(
        as_of=as_of,
        not_sent=sorted(
            (Decision(*row) for row in [*decided, *held]),
            key=lambda d: (d.journey, d.step, d.user_id),
        ),
        entries=[EntryChange(*row) for row in changes],
        window_waits=[WindowWait(*row) for row in waits],
    )
