"""What the HTTP email providers (SendGrid, Postmark) share with SMTP: the sender, the text
part, the preheader and the RFC 8058 unsubscribe headers."""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import parseaddr

from senders.email import with_preheader
from senders.providers import RenderedMessage


def sender_parts(sender: str) -> tuple[str, str]:
    """``(display name, address)`` of ``NUDGE_EMAIL_FROM``; refuses a sender with no address."""
    name, address = parseaddr(sender)
    if "@" not in address:
        raise ValueError(f"NUDGE_EMAIL_FROM={sender!r} has no email address")
    return name, address


def email_parts(message: RenderedMessage) -> tuple[str, str, str | None]:
    """``(subject, text, html)``; the preheader is hidden at the top of the html."""
    content = message.content
    html = content.get("html")
    html_part = with_preheader(str(html), content.get("preheader")) if html else None
    return str(content.get("subject", "")), str(content.get("text") or ""), html_part


def unsubscribe_headers(message: RenderedMessage) -> Mapping[str, str]:
    url = message.content.get("unsubscribe_url")
    if not url:
        return {}
    return {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
