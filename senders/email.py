"""Email over SMTP: one connection per dispatch, RFC 8058 unsubscribe headers, text + HTML.

The exchange is split at the end of the message body, because only there does a failure become
ambiguous. Before it (connection refused, greeting or command timeout, a 4xx to MAIL, RCPT or DATA,
a connection dropped before or during the body) the server cannot have accepted the message: the
failure is transient and safe to retry. After it, a timeout or a dropped connection while waiting
for the reply may hide a stored message: the outcome is unknown and the message is never resent
automatically (``SendOutcome.unknown``). The reply after the body gets ``data_timeout`` (RFC 5321
section 4.5.3.2.6 allows 10 minutes), every other step ``timeout``. A 5xx reply is a permanent
failure; a message ``senders.mime`` refuses to build (a header with CR or LF) is permanent too.

The Message-ID is derived from the delivery id, so any resend carries the same one and a receiver
can deduplicate. A connection the server has closed (or is closing, with a 421) is replaced
*before* the message is handed over; the check looks at the socket without a round trip (a NOOP
per message halved the rate). The message bytes come from ``senders.mime``: building an
``EmailMessage`` and flattening it cost more than the whole SMTP exchange with a local server.
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
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parseaddr

from senders import mime
from senders.providers import Fault, RenderedMessage, SendOutcome
from senders.settings import env_seconds

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
    timeout: float = 20.0  # connecting, the greeting, every command before the body
    data_timeout: float = 600.0  # the reply after the body (RFC 5321: 10 minutes)

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"SMTP port {self.port} is not a port number (1 to 65535)")
        if not (self.timeout > 0 and self.data_timeout > 0):
            raise ValueError("SMTP timeouts must be more than 0 seconds")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SmtpSettings:
        """Read ``NUDGE_SMTP_*`` and ``NUDGE_EMAIL_FROM``; say which variable is wrong if any."""
        env = os.environ if env is None else env
        port_text = env.get("NUDGE_SMTP_PORT", "8025")
        try:
            port = int(port_text)
        except ValueError:
            port = 0
        if not 0 < port < 65536:
            raise ValueError(f"NUDGE_SMTP_PORT={port_text!r} is not a port number (1 to 65535)")
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
            timeout=env_seconds(env, "NUDGE_SMTP_TIMEOUT", cls.timeout),
            data_timeout=env_seconds(env, "NUDGE_SMTP_DATA_TIMEOUT", cls.data_timeout),
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
    multipart/alternative text + html (``utf8``: header values as UTF-8, for SMTPUTF8). The
    Message-ID is ``<delivery id@sender domain>``: the same for every attempt of one delivery."""
    content = message.content
    message_id = f"<{message.delivery_id}@{settings.sender_domain}>"
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
    html_part = with_preheader(str(body_html), content.get("preheader")) if body_html else None
    data = mime.message_bytes(b"".join(headers), str(content.get("text") or ""), html_part)
    return data, message_id


@functools.cache
def _sender_header(sender: str, utf8: bool) -> bytes:
    """The From field, written once per sender (a display name goes through ``email.policy``)."""
    return mime.address_header("From", sender, utf8=utf8)


def with_preheader(body_html: str, preheader: str | None) -> str:
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
        self.label = f"smtp {settings.host}:{settings.port}"
        self._smtp: smtplib.SMTP | None = None

    def send(self, message: RenderedMessage) -> SendOutcome:
        sender = self.settings.sender_address
        international = not (sender + message.address).isascii()
        try:
            data, message_id = build_email(message, self.settings, utf8=international)
        except ValueError as err:
            return SendOutcome.failed(f"message cannot be built: {err}", permanent=True)
        try:
            smtp = self._connection()
        except (OSError, smtplib.SMTPException) as err:
            self._drop()
            fault: Fault = "timeout" if _timed_out(err) else "unreachable"
            reason = f"smtp connection failed: {_describe(err)}"
            return SendOutcome.failed(reason, permanent=False, fault=fault)
        try:
            _send_until_end_of_body(smtp, sender, message.address, data, international)
        except _Refused as refused:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                smtp.rset()
            return _refused(refused.code, refused.reply, refused.what)
        except (OSError, smtplib.SMTPException) as err:
            self._drop()
            reason = f"smtp send failed before the end of the message: {_describe(err)}"
            return SendOutcome.failed(reason, permanent=False, fault=_timeout_fault(err))
        try:
            code, reply = self._reply_after_body(smtp)
        except (OSError, smtplib.SMTPException) as err:
            self._drop()
            reason = f"no reply from the smtp server after the message body: {_describe(err)}"
            return SendOutcome.unknown(reason, fault=_timeout_fault(err))
        if code != 250:
            return _refused(code, reply, "message refused")
        return SendOutcome.sent(message_id)

    def _reply_after_body(self, smtp: smtplib.SMTP) -> tuple[int, bytes]:
        """The server's answer to the end of the body, waiting up to ``data_timeout``."""
        assert smtp.sock is not None  # the body was just written to it
        smtp.sock.settimeout(self.settings.data_timeout)
        try:
            return smtp.getreply()
        finally:
            if smtp.sock is not None:
                smtp.sock.settimeout(self.settings.timeout)

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


class _Refused(Exception):
    """The server answered a command before the body with an error code."""

    def __init__(self, code: int, reply: bytes, what: str):
        super().__init__(code, reply, what)
        self.code, self.reply, self.what = code, reply, what


def _send_until_end_of_body(
    smtp: smtplib.SMTP, sender: str, address: str, data: bytes, international: bool
) -> None:
    """MAIL, RCPT, DATA and the body up to its terminating dot, leaving the reply unread: what
    ``smtplib.SMTP.sendmail`` does, split where a failure stops being safe to retry."""
    code, reply = smtp.mail(sender, _mail_options(smtp, international))
    if code != 250:
        raise _Refused(code, reply, "sender refused")
    code, reply = smtp.rcpt(address)
    if code not in (250, 251):
        raise _Refused(code, reply, "recipient refused")
    smtp.putcmd("data")
    code, reply = smtp.getreply()
    if code != 354:
        raise _Refused(code, reply, "smtp error")
    body = _DOT_AT_LINE_START.sub(b"..", data)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    smtp.send(body + b".\r\n")


# RFC 5321 section 4.5.2: a line starting with a dot gets one more.
_DOT_AT_LINE_START = re.compile(rb"(?m)^\.")


def _timed_out(err: BaseException) -> bool:
    """smtplib turns a socket timeout into SMTPServerDisconnected; look at the cause too."""
    return any(
        isinstance(e, TimeoutError) for e in (err, err.__cause__, err.__context__) if e is not None
    )


def _timeout_fault(err: BaseException) -> Fault | None:
    return "timeout" if _timed_out(err) else None


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
