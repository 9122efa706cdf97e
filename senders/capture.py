"""The ``test`` provider: goes through rendering, policies and the ledger, sends nothing anywhere.

Scenario files and tests use it to see exactly which messages were handed to a provider.
"""

from __future__ import annotations

from senders.providers import RenderedMessage, SendOutcome


class CapturingProvider:
    """Accepts every message for ``channel`` and keeps it in ``messages`` (in send order)."""

    def __init__(self, channel: str, name: str = "test"):
        self.channel = channel
        self.name = name
        self.messages: list[RenderedMessage] = []

    def send(self, message: RenderedMessage) -> SendOutcome:
        self.messages.append(message)
        return SendOutcome.sent(f"{self.name}-{message.delivery_id}")

    def close(self) -> None:
        """Nothing to release; the captured messages stay available."""
