"""What one run did, in plain text for the operator: read back from the warehouse by run id.

Entries, exits and completions per journey (``nudge.journey_transitions``), the journeys' messages
per channel and status and the most frequent failure reasons (``nudge.delivery_ledger``), the
transactional sends this run copied into the ledger (the collector sent them when asked, not the
run), and where to look next. ``nudge run`` prints it after its progress lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nudge.core.warehouse.connection import connect, warehouse_exists, warehouse_location
from nudge.core.workspace import Workspace

# Ledger statuses that mean the message did not reach its provider or was refused by it.
FAILURE_STATUSES = ("failed", "undeliverable")
TOP_REASONS = 5


@dataclass
class RunSummary:
    run_id: str
    status: str | None = None
    journeys: dict[str, dict[str, int]] = field(default_factory=dict)  # journey -> action -> n
    messages: dict[str, dict[str, int]] = field(default_factory=dict)  # channel -> status -> n
    transactional: dict[str, dict[str, int]] = field(default_factory=dict)  # the same, copied
    failure_reasons: list[tuple[str, int]] = field(default_factory=list)
    failed_steps: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def render(self, workspace: Workspace) -> str:
        lines = [f"run {self.run_id}: {self.status or 'not recorded'}"]
        lines.append("journeys (entered / exited / completed):")
        lines += [
            f"  {journey:28} {a.get('entered', 0):>7} {a.get('exited', 0):>7}"
            f" {a.get('completed', 0):>7}"
            for journey, a in sorted(self.journeys.items())
        ] or ["  (no entries changed)"]
        lines.append("messages:")
        lines += _per_channel(self.messages) or ["  (none handed to a provider or decided)"]
        if self.transactional:
            lines.append("transactional sends recorded (sent by the collector when asked):")
            lines += _per_channel(self.transactional)
        if self.failure_reasons:
            lines.append("top failure reasons:")
            lines += [f"  {n:>7}  {reason}" for reason, n in self.failure_reasons]
        if self.failed_steps:
            lines.append("failed steps (later stages did not run):")
            lines += [f"  {step}" for step in self.failed_steps]
        if self.notes:
            lines.append("notes:")
            lines += [f"  {note}" for note in self.notes]
        lines.append("where to look:")
        lines += [
            "  nudge profile USER_ID           one person's traits, journeys and messages",
            "  nudge explain --user U --journey J   why a person is where they are",
            f"  warehouse {warehouse_location(workspace.warehouse_path)}"
            f" (nudge.delivery_ledger where run_id ="
            f" '{self.run_id}')",
            "  dagster dev -w workspace.yaml    this run's steps and logs in the UI",
        ]
        return "\n".join(lines)


def _per_channel(counts: dict[str, dict[str, int]]) -> list[str]:
    return [
        f"  {channel:10} " + ", ".join(f"{n:,} {status}" for status, n in sorted(s.items()))
        for channel, s in sorted(counts.items())
    ]


def summarize_run(workspace: Workspace, run_id: str) -> RunSummary:
    summary = RunSummary(run_id)
    if not warehouse_exists(workspace.warehouse_path):
        return summary
    with connect(workspace.warehouse_path, read_only=True) as con:
        found = con.execute("select status from nudge.runs where run_id = ?", [run_id]).fetchone()
        summary.status = found[0] if found else None
        for journey, action, n in con.execute(
            "select journey, action, count(*) from nudge.journey_transitions"
            " where run_id = ? and action in ('entered', 'exited', 'completed') group by all",
            [run_id],
        ).fetchall():
            summary.journeys.setdefault(journey, {})[action] = n
        # Transactional rows are the only ledger rows without a journey (copy_into_ledger).
        for transactional, channel, status, n in con.execute(
            "select journey is null, channel, status, count(*) from nudge.delivery_ledger"
            " where run_id = ? group by all",
            [run_id],
        ).fetchall():
            counts = summary.transactional if transactional else summary.messages
            counts.setdefault(channel, {})[status] = n
        for channel, n in con.execute(
            "select o.channel, count(*) from nudge.outbox o"
            " anti join nudge.delivery_ledger l using (idempotency_key)"
            " where o.as_of <= (select as_of from nudge.runs where run_id = ?) group by all",
            [run_id],
        ).fetchall():
            summary.messages.setdefault(channel, {})["pending for a later run"] = n
        summary.failure_reasons = con.execute(
            "select coalesce(reason, status), count(*) as n from nudge.delivery_ledger"
            " where run_id = ? and status in (select unnest(cast(? as varchar[])))"
            " group by all order by n desc, 1 limit ?",
            [run_id, list(FAILURE_STATUSES), TOP_REASONS],
        ).fetchall()
    return summary
