"""How many SMS segments a body costs: GSM-7 when every character is in the GSM 03.38 alphabet,
else UCS-2 (UTF-16 code units).

GSM-7: 160 septets in one segment, 153 per segment when split; a character of the extension
table (``{ } [ ] ~ \\ | ^ €`` and form feed) takes two septets. UCS-2: 70 code units in one
segment, 67 when split; a character outside the basic plane (most emoji) takes two. Carriers
bill per segment, so the count is recorded with every message.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")


@dataclass(frozen=True)
class SmsSegments:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int


def count_segments(body: str) -> SmsSegments:
    if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in body):
        units = sum(2 if c in GSM7_EXTENSION else 1 for c in body)
        single, split, encoding = 160, 153, "GSM-7"
    else:
        units = len(body.encode("utf-16-le")) // 2
        single, split, encoding = 70, 67, "UCS-2"
    segments = 1 if units <= single else -(-units // split)
    return SmsSegments(encoding, units, segments)
