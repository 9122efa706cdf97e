"""An email as RFC 5322 bytes, written directly: headers, then one text part or text + html.

``email.message.EmailMessage`` re-parses every header it is given and re-folds it when the
message is flattened; for short messages that was most of the time spent per email (about 2.5 ms
against 1 ms for the SMTP exchange with a local server). Here a header value that is printable
ASCII, is not mistakable for an RFC 2047 encoded word and fits on its line is written as is; any
other value (non-ASCII, a long subject with spaces to fold at, a display name needing quotes) goes
through the standard library's ``email.policy`` folding, which also refuses CR and LF, so a user's
value can never inject a header. Bodies are 7bit when they are ASCII with short lines, otherwise
quoted-printable (``binascii``). A value that cannot be folded (no whitespace, e.g. the
``List-Unsubscribe`` URL) is kept on one line of at most 998 characters rather than turned into
encoded words, which RFC 8058 clients do not decode.
"""

from __future__ import annotations

import binascii
import random
from email import policy as email_policy
from email.policy import EmailPolicy

CRLF = b"\r\n"
MAX_LINE = 78  # RFC 5322: lines SHOULD be at most 78 characters...
HARD_MAX_LINE = 998  # ...and MUST be at most 998.


def _policy(utf8: bool) -> EmailPolicy:
    return email_policy.SMTPUTF8 if utf8 else email_policy.SMTP


def _plain(value: str, line_length: int) -> bool:
    """Whether ``value`` can be written as is: nothing to encode, nothing to fold."""
    if not (value.isascii() and value.isprintable()) or "=?" in value:
        return False
    return line_length <= MAX_LINE or (" " not in value and line_length <= HARD_MAX_LINE)


def header(name: str, value: str, *, utf8: bool = False) -> bytes:
    """One header field, CRLF-terminated. Raises ``ValueError`` for a value with CR or LF."""
    if _plain(value, len(name) + 2 + len(value)):
        return f"{name}: {value}".encode("ascii") + CRLF
    policy = _policy(utf8)
    return policy.fold_binary(name, policy.header_store_parse(name, value)[1])


def address_header(name: str, address: str, *, utf8: bool = False) -> bytes:
    """An address field holding one bare ``local@domain``; anything else (a display name,
    quoting, a group) is parsed and written by the standard library."""
    local, at, domain = address.rpartition("@")
    if at and local and domain and _is_atom_text(local) and _is_atom_text(domain):
        return header(name, address, utf8=utf8)
    policy = _policy(utf8)
    return policy.fold_binary(name, policy.header_store_parse(name, address)[1])


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
