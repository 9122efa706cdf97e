"""Slack incoming webhooks: ``POST {"text": ...}`` or ``{"blocks": [...]}`` to the template's
``url``, else ``NUDGE_SLACK_WEBHOOK_URL``; success is 200 with the body ``ok``.

Slack allows about one message per second per hook: the default rate limit. 404 and the
``no_service`` / ``channel_not_found`` / ``invalid_payload`` answers are permanent. Slack takes no
idempotency key: a request without an answer is an unknown outcome.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from senders.http import HttpClient, HttpLimits, status_outcome
from senders.providers import RenderedMessage, SendOutcome
from senders.settings import env_url


@dataclass(frozen=True, kw_only=True)
class SlackSettings(HttpLimits):
    webhook_url: str | None = None
    concurrency: int = 1  # Slack allows about one message per second per hook
    rate_limit: float | None = 1.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SlackSettings:
        env = os.environ if env is None else env
        url = env.get("NUDGE_SLACK_WEBHOOK_URL", "").strip()
        return cls(
            webhook_url=env_url(env, "NUDGE_SLACK_WEBHOOK_URL", url) if url else None,
            **cls.values_from_env(env, "NUDGE_SLACK"),
        )


class SlackProvider:
    name = "incoming_webhook"
    channel = "slack"

    def __init__(self, settings: SlackSettings):
        self.settings = settings
        self.label = "slack"
        self.concurrency = settings.concurrency
        self.http = HttpClient(self.label, settings)

    def send(self, message: RenderedMessage) -> SendOutcome:
        content = message.content
        url = content.get("url") or self.settings.webhook_url
        if not url:
            reason = "slack template has no url and NUDGE_SLACK_WEBHOOK_URL is not set"
            return SendOutcome.failed(reason, permanent=True)
        payload = {k: content[k] for k in ("text", "blocks") if content.get(k)}
        answer = self.http.call("POST", str(url), json=payload)
        if isinstance(answer, SendOutcome):
            return answer
        outcome = status_outcome(self.label, answer, message_id=None)
        if outcome.status == "sent" and answer.text.strip() not in ("", "ok"):
            return SendOutcome.failed(f"slack: {answer.text[:300]}", permanent=True)
        return outcome

    def close(self) -> None:
        self.http.close()
