"""Email over SMTP: one connection per dispatch, RFC 8058 unsubscribe headers, text + HTML.

A 5xx reply (to RCPT, MAIL or DATA) is a permanent failure: the address or message is refused and
retrying will not help. Connection errors, timeouts and 4xx replies are transient. A message is
never resent on the same call: a connection the server has closed (or is closing, with a 421) is
replaced *before* the message is handed over, so a disconnect during DATA cannot produce a
duplicate. The check looks at the socket without a round trip: a NOOP per message halved the rate.
The message bytes come from ``senders.mime``: building an ``EmailMessage`` and flattening it cost
more than the whole SMTP exchange with a local server.
"""

from __future__ import annotations

import contextlib
import functools
import html
import os
import re
import select
import smtplib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, make_msgid, parseaddr

from senders import mime
from senders.providers import RenderedMessage, SendOutcome

_PREHEADER_STYLE = (
    "display:none;font-size:1px;line-height:1px;max-height:0;max-width:0;opacity:0;"
    "overflow:hidden;mso-hide:all"
)


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "127.0.0.1"
    port: int = 8025
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    sender: str = "nudge <nudge@localhost>"
    timeout: float = 30.0

    @classmethod
    def from_env(cls) -> SmtpSettings:
        """Read ``NUDGE_SMTP_*`` and ``NUDGE_EMAIL_FROM``; say which variable is wrong if any."""
        env = os.environ
        port_text = env.get("NUDGE_SMTP_PORT", "8025")
        try:
            port = int(port_text)
        except ValueError:
            raise ValueError(f"NUDGE_SMTP_PORT={port_text!r} is not a port number") from None
        starttls_text = env.get("NUDGE_SMTP_STARTTLS", "").strip().lower()
        if starttls_text not in ("", "0", "1", "true", "false", "yes", "no"):
            raise ValueError(f"NUDGE_SMTP_STARTTLS={starttls_text!r}: expected true or false")
        sender = env.get("NUDGE_EMAIL_FROM", cls.sender)
        if "@" not in parseaddr(sender)[1]:
            raise ValueError(f"NUDGE_EMAIL_FROM={sender!r} has no email address")
        return cls(
            host=env.get("NUDGE_SMTP_HOST", cls.host),
            port=port,
            username=env.get("NUDGE_SMTP_USERNAME") or None,
            password=env.get("NUDGE_SMTP_PASSWORD") or None,
            starttls=starttls_text in ("1", "true", "yes"),
            sender=sender,
        )

    @functools.cached_property
    def sender_address(self) -> str:
        return parseaddr(self.sender)[1]

    @functools.cached_property
    def sender_domain(self) -> str:
        return self.sender_address.rpartition("@")[2] or "localhost"


def build_email(
    message: RenderedMessage, settings: SmtpSettings, *, utf8: bool = False
) -> tuple[bytes, str]:
    """The message as bytes and its Message-ID: the headers every inbox provider expects, and
    multipart/alternative text + html (``utf8``: header values as UTF-8, for SMTPUTF8)."""
    content = message.content
    message_id = make_msgid(domain=settings.sender_domain)
    headers = [
        mime.header("Date", format_datetime(datetime.now(UTC))),
        _sender_header(settings.sender, utf8),
        mime.address_header("To", message.address, utf8=utf8),
        mime.header("Subject", str(content.get("subject", "")), utf8=utf8),
        mime.header("Message-ID", message_id),
        mime.header("X-Nudge-Delivery-Id", message.delivery_id, utf8=utf8),
    ]
    unsubscribe = content.get("unsubscribe_url")
    if unsubscribe:
        headers.append(mime.header("List-Unsubscribe", f"<{unsubscribe}>", utf8=utf8))
        headers.append(mime.header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    body_html = content.get("html")
    html_part = _with_preheader(str(body_html), content.get("preheader")) if body_html else None
    data = mime.message_bytes(b"".join(headers), str(content.get("text") or ""), html_part)
    return data, message_id


@functools.cache
def _sender_header(sender: str, utf8: bool) -> bytes:
    """The From field, written once per sender (a display name goes through ``email.policy``)."""
    return mime.address_header("From", sender, utf8=utf8)


def _with_preheader(body_html: str, preheader: str | None) -> str:
    """Put the preheader in a hidden element first thing in the body (inbox preview text)."""
    if not preheader:
        return body_html
    hidden = f'<div style="{_PREHEADER_STYLE}">{html.escape(preheader)}</div>'
    match = re.search(r"<body[^>]*>", body_html, flags=re.IGNORECASE)
    if match:
        return body_html[: match.end()] + hidden + body_html[match.end() :]
    return hidden + body_html


class SmtpEmailProvider:
    """Sends email through one SMTP server, reusing the connection across a dispatch."""

    name = "smtp"
    channel = "email"

    def __init__(self, settings: SmtpSettings):
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None

    def send(self, message: RenderedMessage) -> SendOutcome:
        sender = self.settings.sender_address
        international = not (sender + message.address).isascii()
        data, message_id = build_email(message, self.settings, utf8=international)
        try:
            smtp = self._connection()
        except (OSError, smtplib.SMTPException) as err:
            self._drop()
            return SendOutcome.failed(f"smtp connection failed: {_describe(err)}", permanent=False)
        try:
            smtp.sendmail(sender, [message.address], data, _mail_options(smtp, international))
        except smtplib.SMTPRecipientsRefused as err:
            code, reply = next(iter(err.recipients.values()))  # our single recipient
            return _refused(code, reply, "recipient refused")
        except smtplib.SMTPResponseException as err:
            return _refused(err.smtp_code, err.smtp_error, "smtp error")
        except (OSError, smtplib.SMTPException) as err:
            self._drop()
            return SendOutcome.failed(f"smtp send failed: {_describe(err)}", permanent=False)
        return SendOutcome.sent(message_id)

    def close(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self._smtp.quit()
            self._drop()

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is not None:
            if not _closed_by_server(self._smtp):
                return self._smtp
            self._drop()
        settings = self.settings
        smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        try:
            smtp.ehlo()
            if settings.starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if settings.username:
                smtp.login(settings.username, settings.password or "")
        except BaseException:
            smtp.close()
            raise
        self._smtp = smtp
        return smtp

    def _drop(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.close()
            finally:
                self._smtp = None


def _mail_options(smtp: smtplib.SMTP, international: bool) -> tuple[str, ...]:
    """What ``smtplib.SMTP.send_message`` asserts: a non-ASCII address needs SMTPUTF8."""
    if not international:
        return ()
    if not smtp.has_extn("smtputf8"):
        raise smtplib.SMTPNotSupportedError(
            "a non-ASCII address needs SMTPUTF8, which the server does not advertise"
        )
    return ("SMTPUTF8", "BODY=8BITMIME")


def _closed_by_server(smtp: smtplib.SMTP) -> bool:
    """An idle SMTP connection has nothing to read: anything readable is EOF or a 421 goodbye."""
    sock = smtp.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _refused(code: int, reply: bytes | str, what: str) -> SendOutcome:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    return SendOutcome.failed(f"{what}: {code} {text}", permanent=500 <= code < 600)


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
