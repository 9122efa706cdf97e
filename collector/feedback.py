"""Provider callbacks: what happened to a message after the provider took it.

Each provider posts its own shape; each is checked for authenticity, turned into delivery
feedback events and landed like any other event (``docs/delivery-feedback.md``). The next run's
``senders.feedback`` stage folds them into the delivery ledger and suppresses addresses that
hard-bounced, complained or turned out not to exist.

- Twilio status callbacks (``POST /webhooks/twilio``), signed with ``X-Twilio-Signature`` (HMAC
  of the full URL and the sorted form fields, keyed by ``NUDGE_TWILIO_AUTH_TOKEN``), checked with
  Twilio's own validator. The sender names the message in the ``StatusCallback`` URL's query.
- SendGrid's event webhook (``POST /webhooks/sendgrid``), signed with ECDSA
  (``X-Twilio-Email-Event-Webhook-Signature`` over the timestamp header plus the body), checked
  against ``NUDGE_SENDGRID_WEBHOOK_PUBLIC_KEY``. ``custom_args`` carry the ids.
- Postmark's delivery, bounce and spam-complaint webhooks (``POST /webhooks/postmark``) behind
  HTTP Basic credentials ``NUDGE_POSTMARK_WEBHOOK_CREDENTIALS`` (``user:password``), the way
  Postmark authenticates webhooks. ``Metadata`` carries the ids.

A callback for a message nudge did not send (no ids) is acknowledged and counted, not landed: a
provider retries what it sees refused, for days.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from nudge.core.clock import to_utc_naive, utc_now
from nudge.core.landing.writer import land_messages
from nudge.core.workspace import Workspace
from senders.feedback import CALLBACK_PATHS, DELIVERY_ID_KEY, USER_ID_KEY
from senders.transactional import TransactionalStore, store_path

# Ledger states a feedback event can set (the delivery states of docs/delivery.md).
DELIVERED, BOUNCED, SPAMMED, OPENED, CLICKED = (
    "delivered",
    "bounced",
    "spammed",
    "opened",
    "clicked",
)
FEEDBACK_EVENTS = {
    ("email", DELIVERED): "Email Delivered",
    ("email", BOUNCED): "Email Bounced",
    ("email", SPAMMED): "Email Marked as Spam",
    ("email", OPENED): "Email Opened",
    ("email", CLICKED): "Email Link Clicked",
    ("sms", DELIVERED): "SMS Delivered",
    ("sms", BOUNCED): "SMS Bounced",
}
# Twilio error codes that mean the number will never receive a message.
TWILIO_INVALID_NUMBER = frozenset({"21211", "21614", "30005", "30006"})


@dataclass(frozen=True)
class Feedback:
    """One thing a provider reported about one message."""

    delivery_id: str
    user_id: str
    channel: str
    status: str
    provider: str
    occurred_at: datetime | None
    provider_message_id: str | None = None
    address: str | None = None
    reason: str | None = None
    # The address is gone for good: a hard bounce, a complaint, a number that does not exist.
    suppress_address: bool = False

    def message(self) -> dict[str, Any]:
        """The event as landed: a track call from the person the message went to."""
        properties = {
            "delivery_id": self.delivery_id,
            "channel": self.channel,
            "status": self.status,
            "provider": self.provider,
            "provider_message_id": self.provider_message_id,
            "address": self.address,
            "reason": self.reason,
            "suppress_address": self.suppress_address,
        }
        message = {
            "type": "track",
            "userId": self.user_id,
            "event": FEEDBACK_EVENTS[(self.channel, self.status)],
            # The same report twice (providers retry) lands as the same message id.
            "messageId": f"feedback-{self.provider}-{self.delivery_id}-{self.status}",
            "properties": {k: v for k, v in properties.items() if v is not None},
            "context": {"nudge": {"source": "provider_feedback"}},
        }
        if self.occurred_at is not None:
            message["timestamp"] = self.occurred_at.isoformat() + "Z"
        return message


def _epoch(value: Any) -> datetime | None:
    try:
        return to_utc_naive(datetime.fromtimestamp(int(value), UTC))
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _iso(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return to_utc_naive(moment)


def _ids(fields: Mapping[str, Any]) -> tuple[str, str] | None:
    delivery_id, user_id = fields.get(DELIVERY_ID_KEY), fields.get(USER_ID_KEY)
    if isinstance(delivery_id, str) and isinstance(user_id, str) and delivery_id and user_id:
        return delivery_id, user_id
    return None


# -- the shapes of each provider ---------------------------------------------------------------


def twilio_feedback(fields: Mapping[str, str], query: Mapping[str, str]) -> Feedback | None:
    ids = _ids(query)
    status = fields.get("MessageStatus")
    if ids is None or status not in {"delivered", "undelivered", "failed"}:
        return None
    error = fields.get("ErrorCode") or None
    bounced = status != "delivered"
    return Feedback(
        *ids,
        channel="sms",
        status=BOUNCED if bounced else DELIVERED,
        provider="twilio",
        occurred_at=None,
        provider_message_id=fields.get("MessageSid"),
        address=fields.get("To"),
        reason=f"twilio {status}" + (f", error {error}" if error else "") if bounced else None,
        suppress_address=bounced and error in TWILIO_INVALID_NUMBER,
    )


_SENDGRID_STATUS = {
    "delivered": DELIVERED,
    "bounce": BOUNCED,
    "dropped": BOUNCED,
    "spamreport": SPAMMED,
    "open": OPENED,
    "click": CLICKED,
}


def sendgrid_feedback(event: Mapping[str, Any]) -> Feedback | None:
    ids = _ids(event)
    status = _SENDGRID_STATUS.get(event.get("event"))  # type: ignore[arg-type]
    if ids is None or status is None:
        return None
    # SendGrid's "bounce" of type "blocked" is temporary (the receiving server refused for now).
    hard = status == SPAMMED or (status == BOUNCED and event.get("type", "bounce") == "bounce")
    reason = event.get("reason") if status == BOUNCED else None
    return Feedback(
        *ids,
        channel="email",
        status=status,
        provider="sendgrid",
        occurred_at=_epoch(event.get("timestamp")),
        provider_message_id=event.get("sg_message_id"),
        address=event.get("email"),
        reason=f"sendgrid {event.get('event')}: {reason}" if reason else None,
        suppress_address=hard,
    )


_POSTMARK_STATUS = {
    "Delivery": DELIVERED,
    "Bounce": BOUNCED,
    "SpamComplaint": SPAMMED,
    "Open": OPENED,
    "Click": CLICKED,
}
# Postmark bounce types after which the address is deactivated.
_POSTMARK_HARD = frozenset(
    {"HardBounce", "BadEmailAddress", "SpamNotification", "ManuallyDeactivated"}
)


def postmark_feedback(event: Mapping[str, Any]) -> Feedback | None:
    metadata = event.get("Metadata")
    ids = _ids(metadata) if isinstance(metadata, Mapping) else None
    status = _POSTMARK_STATUS.get(event.get("RecordType"))  # type: ignore[arg-type]
    if ids is None or status is None:
        return None
    kind = event.get("Type")
    moment = event.get("DeliveredAt") or event.get("BouncedAt") or event.get("ReceivedAt")
    return Feedback(
        *ids,
        channel="email",
        status=status,
        provider="postmark",
        occurred_at=_iso(moment),
        provider_message_id=event.get("MessageID"),
        address=event.get("Recipient") or event.get("Email"),
        reason=f"postmark {kind}: {event.get('Description', '')}".strip()
        if status == BOUNCED
        else None,
        suppress_address=status == SPAMMED or kind in _POSTMARK_HARD,
    )


# -- authenticity ------------------------------------------------------------------------------


def _sendgrid_key() -> ec.EllipticCurvePublicKey | None:
    text = os.environ.get("NUDGE_SENDGRID_WEBHOOK_PUBLIC_KEY")
    if not text:
        return None
    key = load_der_public_key(base64.b64decode(text))
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("NUDGE_SENDGRID_WEBHOOK_PUBLIC_KEY is not an elliptic-curve public key")
    return key


def sendgrid_signed(body: bytes, signature: str | None, timestamp: str | None) -> bool:
    key = _sendgrid_key()
    if key is None or not signature or not timestamp:
        return False
    try:
        key.verify(
            base64.b64decode(signature), timestamp.encode() + body, ec.ECDSA(hashes.SHA256())
        )
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def postmark_authorized(header: str | None) -> bool:
    expected = os.environ.get("NUDGE_POSTMARK_WEBHOOK_CREDENTIALS")
    if not expected or not header or not header.startswith("Basic "):
        return False
    try:
        given = base64.b64decode(header[6:], validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def public_url(request: Request) -> str:
    """The URL the provider called, as it signed it: behind a proxy, ``NUDGE_PUBLIC_URL``."""
    base = os.environ.get("NUDGE_PUBLIC_URL")
    if not base:
        return str(request.url)
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{base.rstrip('/')}{request.url.path}{query}"


# -- the endpoints -----------------------------------------------------------------------------


def _refused(reason: str, status: int = 401) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status)


class FeedbackReceiver:
    """The callback endpoints of one workspace."""

    def __init__(self, workspace: Workspace, now: Callable[[], datetime] | None = None) -> None:
        self.workspace = workspace
        self.now = now or utc_now

    def routes(self) -> list[Route]:
        return [
            Route(CALLBACK_PATHS["twilio"], self.twilio, methods=["POST"]),
            Route(CALLBACK_PATHS["sendgrid"], self.sendgrid, methods=["POST"]),
            Route(CALLBACK_PATHS["postmark"], self.postmark, methods=["POST"]),
        ]

    def _land(self, found: Iterable[Feedback | None], reported: int) -> JSONResponse:
        feedback = [item for item in found if item is not None]
        if feedback:
            result = land_messages(
                self.workspace.events_landing_dir,
                [item.message() for item in feedback],
                received_at=self.now(),
            )
            if result.rejected:
                return _refused(f"could not land the feedback: {result.rejected}", 400)
            self._suppress_for_transactional(feedback)
        return JSONResponse({"landed": len(feedback), "ignored": reported - len(feedback)})

    def _suppress_for_transactional(self, feedback: list[Feedback]) -> None:
        """Dead addresses are refused by transactional sends at once, not after the next run
        has folded this feedback into the warehouse (docs/transactional.md)."""
        dead = [
            (
                item.channel,
                item.address,
                f"{item.status}: {item.reason}" if item.reason else item.status,
            )
            for item in feedback
            if item.suppress_address and item.address
        ]
        if dead:
            store = TransactionalStore(store_path(self.workspace.warehouse_path))
            try:
                store.add_suppressed_addresses(dead)
            finally:
                store.close()

    async def twilio(self, request: Request) -> Response:
        token = os.environ.get("NUDGE_TWILIO_AUTH_TOKEN")
        if not token:
            return _refused("Twilio callbacks are off: NUDGE_TWILIO_AUTH_TOKEN is not set", 403)
        fields = {key: str(value) for key, value in (await request.form()).items()}
        signature = request.headers.get("X-Twilio-Signature", "")
        if not RequestValidator(token).validate(public_url(request), fields, signature):
            return _refused("X-Twilio-Signature does not match this request")
        return self._land([twilio_feedback(fields, request.query_params)], 1)

    async def sendgrid(self, request: Request) -> Response:
        if not os.environ.get("NUDGE_SENDGRID_WEBHOOK_PUBLIC_KEY"):
            return _refused(
                "SendGrid callbacks are off: NUDGE_SENDGRID_WEBHOOK_PUBLIC_KEY is not set", 403
            )
        body = await request.body()
        signed = sendgrid_signed(
            body,
            request.headers.get("X-Twilio-Email-Event-Webhook-Signature"),
            request.headers.get("X-Twilio-Email-Event-Webhook-Timestamp"),
        )
        if not signed:
            return _refused("the SendGrid event webhook signature does not match this body")
        events = _json(body)
        if not isinstance(events, list):
            return _refused("expected a JSON array of SendGrid events", 400)
        return self._land(
            (sendgrid_feedback(e) for e in events if isinstance(e, Mapping)), len(events)
        )

    async def postmark(self, request: Request) -> Response:
        if not os.environ.get("NUDGE_POSTMARK_WEBHOOK_CREDENTIALS"):
            return _refused(
                "Postmark callbacks are off: NUDGE_POSTMARK_WEBHOOK_CREDENTIALS is not set", 403
            )
        if not postmark_authorized(request.headers.get("Authorization")):
            return _refused("wrong or missing credentials for the Postmark webhook")
        event = _json(await request.body())
        if not isinstance(event, Mapping):
            return _refused("expected a JSON object (one Postmark webhook event)", 400)
        return self._land([postmark_feedback(event)], 1)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
