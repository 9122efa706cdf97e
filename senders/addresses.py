"""What counts as one email address to send to.

A person's address comes from their traits, which anyone holding a write key can set. An email
address must be exactly one bare mailbox (``local@domain``): a display name (``Ann <ann@x>``),
an angle address (``<ann@x>``) or a list (``a@x, b@y``) would still be delivered, by SMTP or by
a provider's API (to every address of the list), while the suppression list, which holds bare
addresses, matches none of them.
"""

from __future__ import annotations

import re

# What makes a mailbox anything but bare: list and group separators, angle brackets, comments,
# quotes, white space, a second @. Written without backslashes, so that the same text is a
# regular expression in Python and in every warehouse's SQL (as a string literal).
_NOT_IN_A_BARE_MAILBOX = '@ <>(),;:"\t\r\n'
BARE_MAILBOX_PATTERN = f"^[^{_NOT_IN_A_BARE_MAILBOX}]+@[^{_NOT_IN_A_BARE_MAILBOX}]+$"
NOT_ONE_ADDRESS = "not one email address"


def is_bare_mailbox(address: str) -> bool:
    """Whether ``address`` is one ``local@domain`` and nothing else."""
    return re.fullmatch(BARE_MAILBOX_PATTERN, address) is not None
