"""Email through SendGrid's v3 Mail Send API (``POST /v3/mail/send``, 202 when accepted).

SendGrid takes no idempotency key: a request sent without an answer is an unknown outcome
(``senders.http``). The delivery id travels in ``custom_args`` so its event webhook can name it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from senders.channels.email_http import email_parts, sender_parts, unsubscribe_headers
from senders.feedback import DELIVERY_ID_KEY, USER_ID_KEY
from senders.http import HttpClient, HttpLimits, status_outcome
from senders.providers import RenderedMessage, SendOutcome
from senders.settings import env_required, env_url

DEFAULT_SENDER = "nudge <nudge@localhost>"


@dataclass(frozen=True, kw_only=True)
class SendgridSettings(HttpLimits):
    api_key: str
    base_url: str = "https://api.sendgrid.com"
    sender: str = DEFAULT_SENDER

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SendgridSettings:
        env = os.environ if env is None else env
        sender = env.get("NUDGE_EMAIL_FROM", DEFAULT_SENDER)
        sender_parts(sender)
        return cls(
            api_key=env_required(env, "NUDGE_SENDGRID_API_KEY", "the sendgrid email provider"),
            base_url=env_url(env, "NUDGE_SENDGRID_BASE_URL", cls.base_url),
            sender=sender,
            **cls.values_from_env(env, "NUDGE_SENDGRID"),
        )


class SendgridEmailProvider:
    name = "sendgrid"
    channel = "email"

    def __init__(self, settings: SendgridSettings):
        self.settings = settings
        self.label = f"sendgrid {settings.base_url}"
        self.concurrency = settings.concurrency
        self.http = HttpClient(self.label, settings)
        self.url = f"{settings.base_url}/v3/mail/send"
        self.sender_name, self.sender_address = sender_parts(settings.sender)

    def payload(self, message: RenderedMessage) -> dict:
        subject, text, html = email_parts(message)
        content = [{"type": "text/plain", "value": text or " "}]
        if html:
            content.append({"type": "text/html", "value": html})
        sender = {"email": self.sender_address}
        if self.sender_name:
            sender["name"] = self.sender_name
        payload = {
            "personalizations": [{"to": [{"email": message.address}]}],
            "from": sender,
            "subject": subject,
            "content": content,
            "custom_args": {DELIVERY_ID_KEY: message.delivery_id, USER_ID_KEY: message.user_id},
        }
        if headers := unsubscribe_headers(message):
            payload["headers"] = dict(headers)
        return payload

    def send(self, message: RenderedMessage) -> SendOutcome:
        answer = self.http.call(
            "POST",
            self.url,
            json=self.payload(message),
            headers={"Authorization": f"Bearer {self.settings.api_key}"},
        )
        if isinstance(answer, SendOutcome):
            return answer
        return status_outcome(self.label, answer, message_id=answer.headers.get("X-Message-Id"))

    def close(self) -> None:
        self.http.close()
