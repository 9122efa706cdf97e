"""SMS through Twilio's Messages API: ``POST /2010-04-01/Accounts/{sid}/Messages.json``,
form-encoded, HTTP Basic with the account SID and auth token; 201 with a ``sid`` when queued.

``NUDGE_TWILIO_FROM`` is a phone number, or a Messaging Service SID (``MG...``). Twilio answers a
refused message with a 4xx and a JSON ``code``: 21610 (the recipient replied STOP), 21211
(invalid number), 21614 (not a mobile number) and 30006 (landline or unreachable) are permanent,
like every other 4xx but 408 and 429. Twilio takes no idempotency key: a request without an
answer is an unknown outcome. The segment count (GSM-7 or UCS-2) goes into the ledger's details.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from senders.feedback import CALLBACK_PATHS, DELIVERY_ID_KEY, USER_ID_KEY
from senders.http import HttpClient, HttpLimits, json_body, status_outcome
from senders.providers import RenderedMessage, SendOutcome
from senders.settings import env_required, env_url
from senders.sms_segments import count_segments

# Codes that mean this number will not take this message (kept in the reason).
PERMANENT_CODES = {
    21610: "recipient opted out (STOP)",
    21211: "invalid phone number",
    21614: "not a mobile number",
    30006: "landline or unreachable carrier",
}


@dataclass(frozen=True, kw_only=True)
class TwilioSettings(HttpLimits):
    account_sid: str
    auth_token: str
    sender: str
    base_url: str = "https://api.twilio.com"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TwilioSettings:
        env = os.environ if env is None else env
        needed_by = "the twilio sms provider"
        return cls(
            account_sid=env_required(env, "NUDGE_TWILIO_ACCOUNT_SID", needed_by),
            auth_token=env_required(env, "NUDGE_TWILIO_AUTH_TOKEN", needed_by),
            sender=env_required(env, "NUDGE_TWILIO_FROM", needed_by),
            base_url=env_url(env, "NUDGE_TWILIO_BASE_URL", cls.base_url),
            **cls.values_from_env(env, "NUDGE_TWILIO"),
        )


def status_callback(message: RenderedMessage) -> dict[str, str]:
    """Twilio reports delivery to the collector (``NUDGE_PUBLIC_URL``), naming the message."""
    base = os.environ.get("NUDGE_PUBLIC_URL")
    if not base:
        return {}
    query = urlencode({DELIVERY_ID_KEY: message.delivery_id, USER_ID_KEY: message.user_id})
    return {"StatusCallback": f"{base.rstrip('/')}{CALLBACK_PATHS['twilio']}?{query}"}


class TwilioSmsProvider:
    name = "twilio"
    channel = "sms"

    def __init__(self, settings: TwilioSettings):
        self.settings = settings
        self.label = f"twilio {settings.base_url}"
        self.concurrency = settings.concurrency
        self.http = HttpClient(self.label, settings)
        self.url = f"{settings.base_url}/2010-04-01/Accounts/{settings.account_sid}/Messages.json"
        self.sender_field = "MessagingServiceSid" if settings.sender.startswith("MG") else "From"

    def send(self, message: RenderedMessage) -> SendOutcome:
        body = str(message.content.get("body", ""))
        segments = count_segments(body)
        answer = self.http.call(
            "POST",
            self.url,
            data={
                "To": message.address,
                self.sender_field: self.settings.sender,
                "Body": body,
                **status_callback(message),
            },
            auth=(self.settings.account_sid, self.settings.auth_token),
        )
        details = {"encoding": segments.encoding, "segments": segments.segments}
        if isinstance(answer, SendOutcome):
            return answer.with_details(**details)
        reply = json_body(answer)
        reply = reply if isinstance(reply, dict) else {}
        outcome = status_outcome(self.label, answer, message_id=reply.get("sid"))
        code = reply.get("code")
        if outcome.status == "failed" and code in PERMANENT_CODES:
            reason = f"{self.label}: error {code}, {PERMANENT_CODES[code]}: {reply.get('message')}"
            outcome = SendOutcome.failed(reason, permanent=True)
        return outcome.with_details(**details)

    def close(self) -> None:
        self.http.close()
