"""Signed one-click unsubscribe links (RFC 8058): ``{NUDGE_PUBLIC_URL}/u/<token>``.

A token is ``base64url(payload).base64url(HMAC-SHA256(secret, payload))``; the payload names the
user and, optionally, the topic. Without the secret nobody can forge a link that unsubscribes
someone else. The secret comes from ``NUDGE_SECRET_KEY``; a fixed development key is used (with a
warning) only when it is unset.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import warnings
from functools import cache

DEFAULT_PUBLIC_URL = "http://127.0.0.1:8080"
_DEV_SECRET = "nudge-development-secret-do-not-use-in-production"


class InvalidToken(ValueError):
    """An unsubscribe token that is malformed or not signed with our secret."""


@cache
def _warn_development_secret() -> None:
    """Warn once per process, not once per message."""
    warnings.warn(
        "NUDGE_SECRET_KEY is not set: unsubscribe links are signed with a public development "
        "key; set NUDGE_SECRET_KEY in production",
        stacklevel=4,
    )


def _secret() -> bytes:
    secret = os.environ.get("NUDGE_SECRET_KEY")
    if not secret:
        _warn_development_secret()
        secret = _DEV_SECRET
    return secret.encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_token(user_id: str, topic: str | None) -> str:
    payload = json.dumps({"u": user_id, "t": topic}, separators=(",", ":")).encode()
    signature = hmac.new(_secret(), payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(signature)}"


def unsubscribe_url(user_id: str, topic: str | None = None) -> str:
    base = os.environ.get("NUDGE_PUBLIC_URL", DEFAULT_PUBLIC_URL).rstrip("/")
    return f"{base}/u/{sign_token(user_id, topic)}"


def verify_token(token: str) -> tuple[str, str | None]:
    """Return ``(user_id, topic)`` of a token we signed; raise ``InvalidToken`` otherwise."""
    try:
        payload_part, signature_part = token.split(".")
        payload, signature = _unb64(payload_part), _unb64(signature_part)
    except ValueError:
        raise InvalidToken(
            "unsubscribe token is malformed (expected <payload>.<signature>)"
        ) from None
    expected = hmac.new(_secret(), payload, hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise InvalidToken("unsubscribe token signature does not match")
    data = json.loads(payload)
    return data["u"], data["t"]
