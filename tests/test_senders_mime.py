"""The email bytes written by ``senders.mime`` read back, through the standard library's parser,
as the same message that ``email.message.EmailMessage`` would have produced."""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta
from email.message import EmailMessage

import pytest

from senders import mime
from senders.email import SmtpSettings, build_email
from senders.providers import RenderedMessage

URL = "https://nudge.example/u/eyJ1IjoidXNlcl8wMDAxMjMiLCJ0IjpudWxsfQ." + "S" * 43
SETTINGS = SmtpSettings(sender="Nudge Team <hello@mail.example>")


def rendered(address: str = "ada@example.com", **content: str) -> RenderedMessage:
    return RenderedMessage(
        delivery_id="d-1", idempotency_key="k-1", user_id="ada", channel="email",
        address=address, journey="j", step="s", template="t",
        content={"unsubscribe_url": URL, **content},
    )  # fmt: skip


def parse(data: bytes) -> EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


def reference(message: RenderedMessage, html: str | None) -> EmailMessage:
    """What the standard library makes of the same fields, flattened and parsed back."""
    ref = EmailMessage()
    ref["From"] = SETTINGS.sender
    ref["To"] = message.address
    ref["Subject"] = message.content.get("subject", "")
    ref.set_content(message.content.get("text") or "")
    if html is not None:
        ref.add_alternative(html, "html")
    return parse(ref.as_bytes(policy=email.policy.SMTP))


def body(message: EmailMessage, kind: str) -> str:
    part = message.get_body((kind,))
    assert part is not None
    return part.get_content().replace("\r\n", "\n")


CASES = {
    "ascii": {
        "subject": "Welcome, Ada & friends",
        "text": "Hi Ada,\n\nWelcome.",
        "html": "<p>Hi</p>",
    },
    "non-ascii": {
        "subject": "Grüße aus Köln, Zoë — " + "ein langer Betreff " * 4,
        "text": "Grüße\n.dot at the start\nFrom here \ttab",
        "html": "<p>Ça va ? " + "très long " * 30 + "</p>",
    },
    "long ascii lines": {"subject": "word " * 30, "text": "x" * 300, "html": "<p>" + "y" * 2000},
    "encoded-word lookalike": {"subject": "=?utf-8?q?not_encoded?= really", "text": "a"},
    "text only": {"subject": "Plain", "text": "Just text\n\nTwo paragraphs\n"},
}


@pytest.mark.parametrize("name", CASES)
def test_parsed_message_matches_the_standard_library(name):
    fields = CASES[name]
    html = fields.get("html")
    message = rendered(**fields)
    data, message_id = build_email(message, SETTINGS)

    ours, ref = parse(data), reference(message, html)

    for header in ("From", "To", "Subject"):
        assert str(ours[header]) == str(ref[header]), header
    assert ours["Message-ID"] == message_id
    assert ours["Date"].datetime.utcoffset() == timedelta(0)
    assert ours.get_content_type() == ref.get_content_type()
    assert body(ours, "plain") == body(ref, "plain")
    if html is not None:
        assert body(ours, "html") == body(ref, "html")
    assert all(not part.defects for part in ours.walk())
    assert all(len(line) <= mime.HARD_MAX_LINE for line in data.split(b"\r\n"))
    assert b"\n" not in data.replace(b"\r\n", b"")  # CRLF only


def test_list_unsubscribe_is_the_plain_url_on_one_line():
    data, _ = build_email(rendered(subject="s", text="t"), SETTINGS)
    assert f"List-Unsubscribe: <{URL}>\r\n".encode() in data
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in data


def test_ascii_short_lines_are_7bit_anything_else_quoted_printable():
    _, plain = mime.text_part("plain", "short\nlines")
    headers, encoded = mime.text_part("plain", "é" + "x" * 100)
    assert plain == b"short\r\nlines\r\n"
    assert b"Content-Transfer-Encoding: quoted-printable" in headers
    assert all(len(line) <= 76 for line in encoded.split(b"\r\n"))


@pytest.mark.parametrize("value", ["Hi\r\nBcc: victim@example.com", "Hi\nthere", "Hi\rthere"])
def test_a_value_with_a_line_break_cannot_add_a_header(value):
    with pytest.raises(ValueError):
        build_email(rendered(subject=value, text="t"), SETTINGS)
    with pytest.raises(ValueError):
        mime.address_header("To", f"ada@example.com\r\nBcc: {value}")


def test_addresses_that_need_quoting_go_through_the_standard_library():
    field = mime.address_header("To", '"Ada, Lovelace" <ada@example.com>')
    assert parse(field + b"\r\n")["To"].addresses[0].addr_spec == "ada@example.com"
    assert mime.address_header("To", "ada+tag@example.com") == b"To: ada+tag@example.com\r\n"


def test_international_address_is_written_as_utf8():
    data, _ = build_email(
        rendered("zoë@example.com", subject="Grüße", text="t"), SETTINGS, utf8=True
    )
    assert "To: zoë@example.com\r\n".encode() in data
    assert parse(data)["Subject"] == "Grüße"
