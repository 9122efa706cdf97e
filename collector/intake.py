"""Validate the messages of one request, keep the bad ones in quarantine, commit the good ones.

A bad message rejects only itself; a message whose person is suppressed is dropped and
counted. The answer (``Intake``) says what happened to every message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collector.commit import GroupCommitter
from collector.customerio import USER_SUPPRESSED, USER_UNSUPPRESSED
from nudge.core.clock import utc_now
from nudge.core.landing.messages import LANDING_COLUMNS, MAX_MESSAGE_BYTES, InvalidMessage
from nudge.core.landing.quarantine import keep, quarantine_record
from nudge.core.landing.rows import journal_row, received_micros
from nudge.core.landing.suppressions import SuppressionList, suppressed_id

# A person's suppression and its end are recorded even while they are suppressed.
SUPPRESSION_EVENTS = frozenset({USER_SUPPRESSED, USER_UNSUPPRESSED})
_EVENT = LANDING_COLUMNS.index("event")


@dataclass(frozen=True)
class Rejected:
    index: int
    message_id: str | None
    reason: str

    def answer(self) -> dict[str, Any]:
        return {"index": self.index, "messageId": self.message_id, "reason": self.reason}


@dataclass
class Intake:
    accepted: int = 0
    suppressed: int = 0
    rejected: list[Rejected] = field(default_factory=list)


def _message_id(message: Any) -> str | None:
    if isinstance(message, dict):
        value = message.get("messageId")
        if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
            return str(value)[:200]
    return None


class Intaker:
    """What every endpoint hands its messages to."""

    def __init__(
        self, committer: GroupCommitter, suppressions: SuppressionList, quarantine_dir: Path
    ) -> None:
        self.committer = committer
        self.suppressions = suppressions
        self.quarantine_dir = quarantine_dir

    async def take(
        self,
        source: str,
        messages: Iterable[tuple[int, Any]],
        *,
        failures: Iterable[tuple[int, Any, str]] = (),
        max_bytes: int = MAX_MESSAGE_BYTES,
    ) -> Intake:
        """Land the valid ``(index, message)`` pairs durably. ``failures`` are messages the
        endpoint already refused, as ``(index, what was sent, reason)``; ``max_bytes`` is the
        size limit of one message from this endpoint's API."""
        intake = Intake()
        received = utc_now()
        received_at = received_micros(received)  # once per request, not per message
        rows: list[list[Any]] = []
        records = [quarantine_record(source, i, reason, sent) for i, sent, reason in failures]
        intake.rejected.extend(Rejected(i, _message_id(sent), r) for i, sent, r in failures)
        suppressed_ids = self.suppressions.current()
        for index, message in messages:
            try:
                row = journal_row(message, received, received_at, max_bytes=max_bytes)
            except InvalidMessage as exc:
                intake.rejected.append(Rejected(index, _message_id(message), exc.reason))
                records.append(quarantine_record(source, index, exc.reason, message))
                continue
            if (
                suppressed_ids
                and suppressed_id(dict(zip(LANDING_COLUMNS, row, strict=True)), suppressed_ids)
                is not None
                and row[_EVENT] not in SUPPRESSION_EVENTS
            ):
                intake.suppressed += 1
                continue
            rows.append(row)
        intake.rejected.sort(key=lambda r: r.index)
        if records:
            await asyncio.to_thread(keep, self.quarantine_dir, records)
        await self.committer.commit(rows)
        intake.accepted = len(rows)
        return intake
