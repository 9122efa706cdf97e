"""What a provider is handed and what it answers: the contract between dispatch and channels."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

Fault = Literal["unreachable", "timeout"]
# The start of the reason of every ledger row whose delivery nobody can confirm or deny.
OUTCOME_UNKNOWN = "outcome unknown"


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
    ``retry_after`` is the provider's ``Retry-After`` in seconds, when it sent one.

    ``ambiguous``: the provider may have delivered the message (the body was sent, no answer came
    back); it is recorded as a permanent failure whose outcome is unknown, never retried
    automatically. ``fault`` is what the circuit breaker counts: ``unreachable`` (no connection
    could be made) or ``timeout`` (the provider stopped answering)."""

    status: Literal["sent", "failed"]
    reason: str | None = None
    provider_message_id: str | None = None
    permanent: bool = False
    retry_after: float | None = None
    ambiguous: bool = False
    fault: Fault | None = None
    # Facts about the send kept in the ledger's ``details`` (SMS segments, push devices, ...).
    details: dict[str, Any] | None = None

    def with_details(self, **details: Any) -> SendOutcome:
        return replace(self, details={**(self.details or {}), **details})

    @classmethod
    def sent(cls, provider_message_id: str | None) -> SendOutcome:
        return cls("sent", None, provider_message_id, False)

    @classmethod
    def failed(
        cls,
        reason: str,
        *,
        permanent: bool,
        retry_after: float | None = None,
        fault: Fault | None = None,
    ) -> SendOutcome:
        return cls("failed", reason, None, permanent, retry_after, fault=fault)

    @classmethod
    def unknown(cls, reason: str, *, fault: Fault | None = None) -> SendOutcome:
        """The message may or may not have been delivered: not resent, the reason says so."""
        return cls(
            "failed", f"{OUTCOME_UNKNOWN}: {reason}", None, True, ambiguous=True, fault=fault
        )


class Provider(Protocol):
    """Delivers messages of one channel. ``close()`` releases connections held across a dispatch.

    A provider may declare ``concurrency`` (messages it takes in flight at once, from several
    threads; 1 when absent) and ``label`` (names it in the circuit breaker's reason)."""

    name: str
    channel: str

    def send(self, message: RenderedMessage) -> SendOutcome: ...

    def close(self) -> None: ...
