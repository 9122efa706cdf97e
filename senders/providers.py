"""What a provider is handed and what it answers: the contract between dispatch and channels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol


@dataclass(frozen=True)
class RenderedMessage:
    """One message, rendered and addressed, ready for a provider.

    ``content`` holds the rendered template fields (for email: subject, preheader, html, text;
    for sms: body; ...) plus ``unsubscribe_url``.
    """

    delivery_id: str
    idempotency_key: str
    user_id: str
    channel: str
    address: str
    journey: str
    step: str
    template: str
    content: dict[str, Any] = field(default_factory=dict)
    topic: str | None = None


@dataclass(frozen=True)
class SendOutcome:
    """A provider's answer. ``permanent`` failures must not be retried (e.g. SMTP 5xx on RCPT);
    ``retry_after`` is the provider's ``Retry-After`` in seconds, when it sent one."""

    status: Literal["sent", "failed"]
    reason: str | None = None
    provider_message_id: str | None = None
    permanent: bool = False
    retry_after: float | None = None

    @classmethod
    def sent(cls, provider_message_id: str | None) -> SendOutcome:
        return cls("sent", None, provider_message_id, False)

    @classmethod
    def failed(
        cls, reason: str, *, permanent: bool, retry_after: float | None = None
    ) -> SendOutcome:
        return cls("failed", reason, None, permanent, retry_after)


class Provider(Protocol):
    """Delivers messages of one channel. ``close()`` releases connections held across a dispatch."""

    name: str
    channel: str

    def send(self, message: RenderedMessage) -> SendOutcome: ...

    def close(self) -> None: ...
