"""What a send teaches about a user, landed as data like any other message.

Providers never open the warehouse (a run holds it): a device token FCM calls ``UNREGISTERED``
and the traits a webhook's answer maps are written to the landing area
(``nudge.core.landing.writer``), and the next run loads them. Message ids derive from the delivery,
so landing the same fact twice (a retried delivery) is one message to the loader.

Landing never raises: it follows a send the provider accepted, and an exception would reach the
dispatch as a failed send, which it would retry, delivering the message again. A fact that
cannot be landed (a full disk, a trait over the size limit) is logged, and its reason returned
for the ledger's details.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from nudge.core.landing.writer import land_messages

# Customer.io's semantic event for a device that is gone; the devices model drops the token.
DEVICE_DELETED = "Device Deleted"

log = logging.getLogger(__name__)


def _message_id(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def land_device_removed(
    landing_dir: Path, *, user_id: str, token: str, delivery_id: str, why: str
) -> str | None:
    """A track ``Device Deleted`` with the token (``properties.device_token``) and ``why``;
    returns why it could not be landed, if it could not."""
    message = {
        "type": "track",
        "event": DEVICE_DELETED,
        "userId": user_id,
        "messageId": _message_id("device-deleted", delivery_id, token),
        "properties": {"device_token": token, "reason": why, "delivery_id": delivery_id},
    }
    return _land(landing_dir, message, delivery_id)


def land_traits(
    landing_dir: Path, *, user_id: str, traits: dict[str, Any], delivery_id: str
) -> str | None:
    """An identify setting ``traits`` on ``user_id``; returns why it could not be landed, if it
    could not."""
    message = {
        "type": "identify",
        "userId": user_id,
        "messageId": _message_id("webhook-response", delivery_id),
        "traits": traits,
        "context": {"nudge": {"delivery_id": delivery_id}},
    }
    return _land(landing_dir, message, delivery_id)


def _land(landing_dir: Path, message: dict[str, Any], delivery_id: str) -> str | None:
    try:
        result = land_messages(landing_dir, [message])
    except OSError as err:
        reason = f"the landing area could not be written: {err}"
    else:
        if not result.rejected:
            return None
        reason = result.rejected[0].reason
    problem = f"could not land the {message['type']} delivery {delivery_id} taught: {reason}"
    log.warning("%s", problem)
    return problem
