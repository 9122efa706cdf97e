"""Email through Postmark's ``POST /email`` (200 with ``ErrorCode`` 0 when accepted).

Postmark answers a refused message with 422 and an ``ErrorCode``: 406 (inactive recipient:
bounced, complained or unsubscribed before) and every other 422 are permanent. It takes no
idempotency key: a request without an answer is an unknown outcome.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from senders.channels.email_http import email_parts, sender_parts, unsubscribe_headers
from senders.feedback import DELIVERY_ID_KEY, USER_ID_KEY
from senders.http import HttpClient, HttpLimits, json_body, status_outcome
from senders.providers import RenderedMessage, SendOutcome
from senders.settings import env_required, env_url

DEFAULT_SENDER = "nudge <nudge@localhost>"


@dataclass(frozen=True, kw_only=True)
class PostmarkSettings(HttpLimits):
    server_token: str
    base_url: str = "https://api.postmarkapp.com"
    sender: str = DEFAULT_SENDER
    message_stream: str = "outbound"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PostmarkSettings:
        env = os.environ if env is None else env
        sender = env.get("NUDGE_EMAIL_FROM", DEFAULT_SENDER)
        sender_parts(sender)
        return cls(
            server_token=env_required(
                env, "NUDGE_POSTMARK_SERVER_TOKEN", "the postmark email provider"
            ),
            base_url=env_url(env, "NUDGE_POSTMARK_BASE_URL", cls.base_url),
            sender=sender,
            message_stream=env.get("NUDGE_POSTMARK_MESSAGE_STREAM", "").strip()
            or cls.message_stream,
            **cls.values_from_env(env, "NUDGE_POSTMARK"),
        )


class PostmarkEmailProvider:
    name = "postmark"
    channel = "email"

    def __init__(self, settings: PostmarkSettings):
        self.settings = settings
        self.label = f"postmark {settings.base_url}"
        self.concurrency = settings.concurrency
        self.http = HttpClient(self.label, settings)
        self.url = f"{settings.base_url}/email"

    def payload(self, message: RenderedMessage) -> dict:
        subject, text, html = email_parts(message)
        payload = {
            "From": self.settings.sender,
            "To": message.address,
            "Subject": subject,
            "TextBody": text,
            "MessageStream": self.settings.message_stream,
            "Metadata": {DELIVERY_ID_KEY: message.delivery_id, USER_ID_KEY: message.user_id},
            "Headers": [
                {"Name": name, "Value": value}
                for name, value in unsubscribe_headers(message).items()
            ],
        }
        if html:
            payload["HtmlBody"] = html
        return payload

    def send(self, message: RenderedMessage) -> SendOutcome:
        answer = self.http.call(
            "POST",
            self.url,
            json=self.payload(message),
            headers={
                "X-Postmark-Server-Token": self.settings.server_token,
                "Accept": "application/json",
            },
        )
        if isinstance(answer, SendOutcome):
            return answer
        body = json_body(answer)
        body = body if isinstance(body, dict) else {}
        outcome = status_outcome(self.label, answer, message_id=body.get("MessageID"))
        if outcome.status == "sent" and body.get("ErrorCode", 0) != 0:
            reason = f"{self.label}: ErrorCode {body.get('ErrorCode')}: {body.get('Message')}"
            return SendOutcome.failed(reason, permanent=True)
        return outcome

    def close(self) -> None:
        self.http.close()
