"""Push through FCM HTTP v1: ``POST /v1/projects/{project}/messages:send`` with a Bearer token.

The token is an OAuth2 access token from the service account's ``token_uri`` (a JWT-bearer grant
signed with the account's key, by google-auth), cached until it expires and shared by the
threads. One request per registered device of the user (the message's address holds the
user's tokens, most recently used first; see ``senders.policy``):

- a device FCM calls ``UNREGISTERED`` is removed: a ``Device Deleted`` event is landed for it
  (``senders.user_updates``); any other 4xx but 408 and 429 is permanent for that device;
- the message is ``sent`` when one device took it (the details count devices sent, removed and
  failed; a device that failed transiently is not retried, so the others do not get it twice);
  otherwise an unknown outcome on any device makes it unknown, a transient failure transient,
  and a message no device can take a permanent failure.

A payload over FCM's 4 KB limit is refused before any request (permanent). FCM takes no
idempotency key: a request without an answer is an unknown outcome.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import google.auth.transport.requests
from google.oauth2 import service_account

from senders.http import HttpClient, HttpLimits, json_body, status_outcome
from senders.providers import RenderedMessage, SendOutcome
from senders.settings import env_required, env_url
from senders.user_updates import land_device_removed

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
MAX_PAYLOAD_BYTES = 4096
# The errorCode of a token that will never take a message again (the app was uninstalled).
UNREGISTERED = "UNREGISTERED"


@dataclass(frozen=True, kw_only=True)
class FcmSettings(HttpLimits):
    project_id: str
    credentials_file: str
    base_url: str = "https://fcm.googleapis.com"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> FcmSettings:
        env = os.environ if env is None else env
        needed_by = "the fcm push provider"
        credentials_file = env_required(env, "NUDGE_FCM_CREDENTIALS_FILE", needed_by)
        _service_account_info(credentials_file)
        return cls(
            project_id=env_required(env, "NUDGE_FCM_PROJECT_ID", needed_by),
            credentials_file=credentials_file,
            base_url=env_url(env, "NUDGE_FCM_BASE_URL", cls.base_url),
            **cls.values_from_env(env, "NUDGE_FCM"),
        )


def _service_account_info(path: str) -> dict[str, Any]:
    """The service-account JSON, checked for what the token grant needs."""
    try:
        info = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise ValueError(
            f"NUDGE_FCM_CREDENTIALS_FILE={path!r} cannot be read as JSON ({err}); point it at "
            "the service-account key file downloaded from the Firebase console"
        ) from None
    missing = [k for k in ("client_email", "private_key", "token_uri") if not info.get(k)]
    if not isinstance(info, dict) or missing:
        raise ValueError(
            f"NUDGE_FCM_CREDENTIALS_FILE={path!r} is not a service-account key: "
            f"missing {', '.join(missing) or 'everything'}"
        )
    return info


def push_payload(message: RenderedMessage, token: str) -> dict[str, Any]:
    content = message.content
    data = {
        str(k): v if isinstance(v, str) else json.dumps(v)
        for k, v in (content.get("data") or {}).items()
    }
    data["nudge_delivery_id"] = message.delivery_id
    body: dict[str, Any] = {
        "token": token,
        "notification": {
            "title": str(content.get("title", "")),
            "body": str(content.get("body", "")),
        },
        "data": data,
    }
    return {"message": body}


def payload_size(message: RenderedMessage) -> int:
    """Bytes of what FCM counts against its limit: the notification and the data."""
    payload = push_payload(message, "")["message"]
    return len(json.dumps({"notification": payload["notification"], "data": payload["data"]},
                          ensure_ascii=False, separators=(",", ":")).encode())  # fmt: skip


class FcmPushProvider:
    name = "fcm"
    channel = "push"

    def __init__(self, settings: FcmSettings, landing_dir: Path):
        self.settings = settings
        self.landing_dir = landing_dir
        self.label = f"fcm {settings.base_url}"
        self.concurrency = settings.concurrency
        self.http = HttpClient(self.label, settings)
        self.url = f"{settings.base_url}/v1/projects/{settings.project_id}/messages:send"
        self.credentials = service_account.Credentials.from_service_account_info(
            _service_account_info(settings.credentials_file), scopes=[SCOPE]
        )
        self._token_lock = threading.Lock()

    def _access_token(self) -> str:
        with self._token_lock:
            if not self.credentials.valid:
                self.credentials.refresh(google.auth.transport.requests.Request(self.http.session))
            return str(self.credentials.token)

    def send(self, message: RenderedMessage) -> SendOutcome:
        size = payload_size(message)
        if size > MAX_PAYLOAD_BYTES:
            reason = f"push payload is {size} bytes, over FCM's {MAX_PAYLOAD_BYTES}-byte limit"
            return SendOutcome.failed(reason, permanent=True)
        try:
            bearer = self._access_token()
        except Exception as err:  # google-auth raises its own errors for a refused grant
            reason = f"{self.label}: no access token from the token_uri ({err})"
            return SendOutcome.failed(reason, permanent=False, fault="unreachable")
        outcomes = [self._send_to(message, t, bearer) for t in message.address.split()]
        return _combine(outcomes)

    def _send_to(self, message: RenderedMessage, token: str, bearer: str) -> _DeviceOutcome:
        answer = self.http.call(
            "POST", self.url, json=push_payload(message, token),
            headers={"Authorization": f"Bearer {bearer}"},
        )  # fmt: skip
        if isinstance(answer, SendOutcome):
            return _DeviceOutcome(answer)
        reply = json_body(answer)
        reply = reply if isinstance(reply, dict) else {}
        outcome = status_outcome(self.label, answer, message_id=reply.get("name"))
        if answer.status_code == 401:
            self.credentials.token = None  # expired or revoked: fetch a new one next time
            return _DeviceOutcome(SendOutcome.failed(outcome.reason or "401", permanent=False))
        if outcome.status == "failed" and _error_code(reply) == UNREGISTERED:
            problem = land_device_removed(
                self.landing_dir, user_id=message.user_id, token=token,
                delivery_id=message.delivery_id, why=UNREGISTERED,
            )  # fmt: skip
            gone = SendOutcome.failed(f"{self.label}: device token {UNREGISTERED}", permanent=True)
            return _DeviceOutcome(gone, removed=problem is None)
        return _DeviceOutcome(outcome)

    def close(self) -> None:
        self.http.close()


@dataclass(frozen=True)
class _DeviceOutcome:
    outcome: SendOutcome
    removed: bool = False


def _combine(per_device: list[_DeviceOutcome]) -> SendOutcome:
    """One outcome for the message from its devices' (see the module docstring)."""
    outcomes = [d.outcome for d in per_device]
    sent = [o for o in outcomes if o.status == "sent"]
    details = {
        "devices": len(outcomes),
        "sent": len(sent),
        "removed": sum(d.removed for d in per_device),
    }
    if sent:
        return SendOutcome.sent(sent[0].provider_message_id).with_details(**details)
    if not outcomes:
        return SendOutcome.failed("no device token", permanent=True)
    for chosen in (
        next((o for o in outcomes if o.ambiguous), None),
        next((o for o in outcomes if not o.permanent), None),
    ):
        if chosen is not None:
            return chosen.with_details(**details)
    reasons = "; ".join(sorted({o.reason or "" for o in outcomes}))
    return SendOutcome.failed(f"no device took it: {reasons}", permanent=True).with_details(
        **details
    )


def _error_code(reply: Mapping[str, Any]) -> str | None:
    """FCM's ``errorCode`` from ``error.details``, else the ``error.status``."""
    error = reply.get("error")
    if not isinstance(error, dict):
        return None
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and detail.get("errorCode"):
            return str(detail["errorCode"])
    return str(error["status"]) if error.get("status") else None
