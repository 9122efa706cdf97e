"""Durations as written in the authoring formats: integer-and-unit pairs, largest unit first.

``30s``, ``15m``, ``6h``, ``3d``, ``2w``, ``1d12h``, ``2d4h30m``.
"""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_PATTERN = re.compile("".join(rf"(?:(\d+){unit})?" for unit, _ in _UNITS))
EXPECTED = (
    "expected a duration: integer-and-unit pairs (w, d, h, m, s), largest unit first, "
    "e.g. 30s, 15m, 6h, 3d, 2w, 1d12h"
)


def parse_duration(text: str) -> timedelta:
    """Parse ``text`` (e.g. ``1d12h``) into a timedelta; raise ``ValueError`` saying what is expected."""
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a duration; {EXPECTED}")
    match = _PATTERN.fullmatch(text.strip())
    if not text.strip() or match is None:
        raise ValueError(f"{text!r} is not a duration; {EXPECTED}")
    seconds = sum(
        int(amount) * size
        for amount, (_, size) in zip(match.groups(), _UNITS, strict=True)
        if amount is not None
    )
    return timedelta(seconds=seconds)


def format_duration(td: timedelta) -> str:
    """Duration text for ``td`` as people write it: ``30d``, ``1d12h``; weeks only when whole
    (``2w``, not ``4w2d``). Whole seconds; negative gets a leading ``-``."""
    total = int(td.total_seconds())
    sign, total = ("-", -total) if total < 0 else ("", total)
    week = dict(_UNITS)["w"]
    units = _UNITS if total % week == 0 else [(u, s) for u, s in _UNITS if u != "w"]
    parts = []
    for unit, size in units:
        amount, total = divmod(total, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return sign + ("".join(parts) or "0s")
