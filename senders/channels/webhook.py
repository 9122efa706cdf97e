"""Webhooks: the template's ``method``, ``url``, ``headers`` and ``json`` body, signed per
Standard Webhooks (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``) with
``NUDGE_WEBHOOK_SECRET`` (``whsec_<base64 key>``, signed by the ``standardwebhooks`` library).

``webhook-id`` is the delivery id, the same for every attempt: Standard Webhooks receivers drop a
repeated id, so a request sent without an answer is retried rather than left unknown. 410 and
every other 4xx but 408 and 429 are permanent.

``response_traits`` (optional, ``{trait: "path.in.answer"}``) maps fields of a JSON answer into
the user's traits, landed as an identify (``senders.user_updates``): Customer.io's "send and receive
data".
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from standardwebhooks.webhooks import Webhook

from senders.http import HttpClient, HttpLimits, json_body, status_outcome
from senders.providers import RenderedMessage, SendOutcome
from senders.settings import env_required
from senders.user_updates import land_traits

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, kw_only=True)
class WebhookSettings(HttpLimits):
    secret: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WebhookSettings:
        env = os.environ if env is None else env
        secret = env_required(env, "NUDGE_WEBHOOK_SECRET", "signing webhooks")
        try:
            Webhook(secret)
        except Exception:
            raise ValueError(
                "NUDGE_WEBHOOK_SECRET is not a Standard Webhooks secret; write it whsec_ followed "
                "by a base64 key (for example whsec_ and the output of `openssl rand -base64 32`)"
            ) from None
        return cls(secret=secret, **cls.values_from_env(env, "NUDGE_WEBHOOK"))


def response_fields(answer: Any, mapping: Mapping[str, Any]) -> dict[str, Any]:
    """``{trait: value}`` for each dotted path of ``mapping`` found in the JSON ``answer``."""
    traits: dict[str, Any] = {}
    for trait, path in mapping.items():
        value = answer
        for part in str(path).split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None:
            traits[str(trait)] = value
    return traits


class WebhookProvider:
    name = "http"
    channel = "webhook"

    def __init__(self, settings: WebhookSettings, landing_dir: Path):
        self.settings = settings
        self.landing_dir = landing_dir
        self.label = "webhook"
        self.concurrency = settings.concurrency
        self.http = HttpClient(self.label, settings)
        self.signer = Webhook(settings.secret)

    def send(self, message: RenderedMessage) -> SendOutcome:
        content = message.content
        method = str(content.get("method") or "POST").upper()
        if method not in METHODS:
            reason = f"webhook method {method!r} is not one of {', '.join(sorted(METHODS))}"
            return SendOutcome.failed(reason, permanent=True)
        url = str(content.get("url") or message.address)
        body = "" if content.get("json") is None else json.dumps(content["json"])
        now = datetime.now(UTC)
        headers = {str(k): str(v) for k, v in (content.get("headers") or {}).items()}
        headers.update({
            "content-type": "application/json",
            "webhook-id": message.delivery_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self.signer.sign(message.delivery_id, now, body),
        })  # fmt: skip
        answer = self.http.call(method, url, data=body.encode(), headers=headers, deduplicated=True)
        if isinstance(answer, SendOutcome):
            return answer
        outcome = status_outcome(f"webhook {url}", answer, message_id=None)
        mapping = content.get("response_traits")
        if outcome.status == "sent" and isinstance(mapping, dict) and mapping:
            traits = response_fields(json_body(answer), mapping)
            if traits:
                problem = land_traits(self.landing_dir, user_id=message.user_id, traits=traits,
                                      delivery_id=message.delivery_id)  # fmt: skip
                outcome = outcome.with_details(traits=sorted(traits))
                if problem is not None:  # still sent: the receiver has it
                    outcome = outcome.with_details(traits_not_landed=problem)
        return outcome

    def close(self) -> None:
        self.http.close()
