"""An email as RFC 5322 bytes, written directly: headers, then one text part or text + html.

``email.message.EmailMessage`` re-parses every header it is given and re-folds it when the
message is flattened; for short messages that was most of the time spent per email (about 2.5 ms
against 1 ms for the SMTP exchange with a local server). Here a header value that is printable
ASCII, is not mistakable for an RFC 2047 encoded word and fits on its line is written as is; any
other value (non-ASCII, a long subject with spaces to fold at, a display name needing quotes) goes
through the standard library's ``email.policy`` folding. No value can add a header or a body: a
value holding CR or LF is refused, also when the line break hides in an RFC 2047 encoded word
(``=?utf-8?q?Bob=0D=0AX-Injected:_yes?=``, which CPython before 3.13 decodes and then writes out
raw, CVE-2024-6923), and the folded bytes are verified to break lines only to fold (CRLF then a
space or tab) and at the end, whatever the interpreter's folding does. Bodies are 7bit when they are ASCII with short lines, otherwise
quoted-printable (``binascii``). A value that cannot be folded (no whitespace, e.g. the
``List-Unsubscribe`` URL) is kept on one line of at most 998 characters rather than turned into
encoded words, which RFC 8058 clients do not decode.
"""

from __future__ import annotations

import binascii
import random
from email import policy as email_policy
from email.policy import EmailPolicy
from typing import Any

CRLF = b"\r\n"
MAX_LINE = 78  # RFC 5322: lines SHOULD be at most 78 characters...
HARD_MAX_LINE = 998  # ...and MUST be at most 998.


class UnsafeHeaderValue(ValueError):
    """A header value that would break out of its line: it could add a header or start the body."""

    def __init__(self, name: str, problem: str):
        self.header = name
        super().__init__(f"header {name!r} refused: {problem}; a header value must be one line")


def _policy(utf8: bool) -> EmailPolicy:
    return email_policy.SMTPUTF8 if utf8 else email_policy.SMTP


def _fits(value: str, line_length: int) -> bool:
    """Whether a one-line ``value`` can be written as is: nothing to fold."""
    return line_length <= MAX_LINE or (" " not in value and line_length <= HARD_MAX_LINE)


def _one_line(value: str) -> bool:
    """Printable ASCII with no encoded word: nothing in it can become a line break."""
    return value.isascii() and value.isprintable() and "=?" not in value


def _parsed(name: str, value: str, policy: EmailPolicy) -> Any:
    """The standard library's header object for ``value``, refused (``UnsafeHeaderValue``) when
    the value or its decoded form (RFC 2047 encoded words decoded) holds CR or LF."""
    if "\r" in value or "\n" in value:
        raise UnsafeHeaderValue(name, "the value contains a line break (CR or LF)")
    try:
        parsed = policy.header_store_parse(name, value)[1]
    except ValueError as err:  # e.g. an address part with a line break
        raise UnsafeHeaderValue(name, str(err)) from None
    if "\r" in str(parsed) or "\n" in str(parsed):
        raise UnsafeHeaderValue(
            name, "an RFC 2047 encoded word in the value decodes to a line break (CR or LF)"
        )
    return parsed


def check_header_value(name: str, value: str) -> None:
    """Raise ``UnsafeHeaderValue`` (naming ``name``) if ``value`` could not be written as one
    header line; for checking a rendered value before a message is built from it."""
    if not _one_line(value):
        _parsed(name, value, email_policy.SMTP)


def _folded(name: str, value: str, policy: EmailPolicy) -> bytes:
    """``value`` folded by ``policy``, verified to contain no line break but folds."""
    folded = policy.fold_binary(name, _parsed(name, value, policy))
    lines = folded.split(CRLF)
    if (
        lines[-1]
        or not lines[0].startswith(name.encode("ascii") + b":")
        or any(b"\r" in line or b"\n" in line for line in lines)
        or any(line[:1] not in (b" ", b"\t") or not line.strip() for line in lines[1:-1])
    ):
        raise UnsafeHeaderValue(name, "folding it produced a line break that is not a fold")
    return folded


def header(name: str, value: str, *, utf8: bool = False) -> bytes:
    """One header field, CRLF-terminated. Raises ``UnsafeHeaderValue`` (a ``ValueError``) for a
    value that could add a header or a body."""
    if _one_line(value) and _fits(value, len(name) + 2 + len(value)):
        return f"{name}: {value}".encode("ascii") + CRLF
    return _folded(name, value, _policy(utf8))


def address_header(name: str, address: str, *, utf8: bool = False) -> bytes:
    """An address field holding one bare ``local@domain``; anything else (a display name,
    quoting, a group) is parsed and written by the standard library."""
    local, at, domain = address.rpartition("@")
    if at and local and domain and _is_atom_text(local) and _is_atom_text(domain):
        return header(name, address, utf8=utf8)
    return _folded(name, address, _policy(utf8))


_ATOM_SPECIALS = frozenset('()<>[]:;@\\,"')


def _is_atom_text(text: str) -> bool:
    return (
        text.isascii() and text.isprintable() and " " not in text and not _ATOM_SPECIALS & set(text)
    )


def text_part(subtype: str, text: str) -> tuple[bytes, bytes]:
    """``(headers, body)`` of a ``text/<subtype>`` UTF-8 part."""
    lines = text.encode("utf-8").splitlines()
    if all(len(line) <= MAX_LINE and line.isascii() for line in lines):
        encoding, body = b"7bit", CRLF.join(lines) + CRLF
    else:
        encoded = binascii.b2a_qp(b"\n".join(lines) + b"\n", istext=True)
        encoding, body = b"quoted-printable", encoded.replace(b"\n", CRLF)
    headers = (
        b'Content-Type: text/' + subtype.encode("ascii") + b'; charset="utf-8"' + CRLF
        + b"Content-Transfer-Encoding: " + encoding + CRLF
    )  # fmt: skip
    return headers, body


def message_bytes(headers: bytes, text: str, html: str | None) -> bytes:
    """The whole message: ``headers`` (CRLF-terminated fields), then the text part alone or,
    with ``html``, a ``multipart/alternative`` of both."""
    text_headers, text_body = text_part("plain", text)
    if html is None:
        return headers + b"MIME-Version: 1.0" + CRLF + text_headers + CRLF + text_body
    html_headers, html_body = text_part("html", html)
    boundary = _boundary(text_body, html_body)
    return b"".join(
        (
            headers,
            b"MIME-Version: 1.0" + CRLF,
            b'Content-Type: multipart/alternative; boundary="' + boundary + b'"' + CRLF,
            CRLF,
            b"--" + boundary + CRLF,
            text_headers + CRLF + text_body,
            CRLF + b"--" + boundary + CRLF,
            html_headers + CRLF + html_body,
            CRLF + b"--" + boundary + b"--" + CRLF,
        )
    )


def _boundary(*bodies: bytes) -> bytes:
    """A random boundary that occurs in no body (a collision is practically impossible; checked
    anyway, as the standard library does)."""
    while True:
        boundary = b"=_nudge_%032x" % random.getrandbits(128)
        if not any(boundary in body for body in bodies):
            return boundary
