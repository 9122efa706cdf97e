"""Signed one-click unsubscribe links (RFC 8058): ``{NUDGE_PUBLIC_URL}/u/<token>``.

A token is ``base64url(payload).base64url(HMAC-SHA256(secret, payload))``; the payload names the
user and, optionally, the topic and the channel of the message that carried the link (so the
unsubscribe page can offer to stop the topic on that channel only). Without the secret nobody can forge a link that unsubscribes
someone else. The secret is ``NUDGE_SECRET_KEY``. There is no built-in key: a key written in the
source is public, and anything signed with it can be forged. A live provider does not start
without a real key and a public URL (``require_live_settings``). Without ``NUDGE_SECRET_KEY`` (the
``capture`` test provider, dry runs), links are signed with a random key made for this process:
they look real but verify nowhere else, which is right for messages nobody receives.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from functools import cache
from pathlib import Path
from typing import NamedTuple

# Where `nudge demo` serves its own links; never a default for a live run.
LOCAL_PUBLIC_URL = "http://127.0.0.1:8080"
MIN_SECRET_LENGTH = 32
# The key earlier versions used when NUDGE_SECRET_KEY was unset: public, so refused for live sends.
_PUBLIC_DEVELOPMENT_KEY = "nudge-development-secret-do-not-use-in-production"
_HOW_TO_SET = (
    f"set NUDGE_SECRET_KEY to a random secret of at least {MIN_SECRET_LENGTH} characters (for "
    "example the output "
    "of `python -c 'import secrets; print(secrets.token_urlsafe(32))'`) and NUDGE_PUBLIC_URL to "
    "the https:// address where this nudge answers unsubscribe links, then run again"
)


class InvalidToken(ValueError):
    """An unsubscribe token that is malformed or not signed with our secret."""


class MissingLiveSettings(RuntimeError):
    """A live provider was asked to send without a real secret key or public URL."""


def live_settings_problem() -> str | None:
    """Why links signed now must not be sent by a live provider, or ``None`` when they may."""
    key = os.environ.get("NUDGE_SECRET_KEY", "")
    url = os.environ.get("NUDGE_PUBLIC_URL", "").strip()
    problems = []
    if not key:
        problems.append("NUDGE_SECRET_KEY is not set")
    elif key == _PUBLIC_DEVELOPMENT_KEY:
        problems.append("NUDGE_SECRET_KEY is the public development key")
    elif len(key) < MIN_SECRET_LENGTH:
        problems.append(f"NUDGE_SECRET_KEY is shorter than {MIN_SECRET_LENGTH} characters")
    if not url:
        problems.append("NUDGE_PUBLIC_URL is not set")
    elif not url.startswith(("https://", "http://")) or any(c.isspace() for c in url):
        problems.append(f"NUDGE_PUBLIC_URL={url!r} is not an http(s) URL")
    if not problems:
        return None
    return f"{' and '.join(problems)}: live email sending refused; {_HOW_TO_SET}"


def require_live_settings() -> None:
    """Raise ``MissingLiveSettings`` (one sentence naming the variables and how to set them)
    unless unsubscribe links can be signed with a real key and point at a public URL."""
    problem = live_settings_problem()
    if problem:
        raise MissingLiveSettings(problem)


def local_secret_key(path: Path) -> str:
    """A random key kept in ``path`` (created, readable by its owner only, on first use): for a
    local workspace such as the demo's, whose links must verify across its runs."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


@cache
def _process_key() -> bytes:
    return secrets.token_bytes(32)


def _secret() -> bytes:
    secret = os.environ.get("NUDGE_SECRET_KEY")
    return secret.encode() if secret else _process_key()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Link(NamedTuple):
    """What a verified token names."""

    user_id: str
    topic: str | None
    channel: str | None = None


# ``json.dumps`` with ``separators`` builds a new encoder on every call.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


def sign_token(user_id: str, topic: str | None, channel: str | None = None) -> str:
    """Every email a dispatch renders signs two (the unsubscribe and the preference links), so
    this is written for speed: one shared encoder and the one-shot ``hmac.digest``."""
    fields = {"u": user_id, "t": topic} | ({"c": channel} if channel else {})
    payload = _COMPACT_JSON.encode(fields).encode()
    signature = hmac.digest(_secret(), payload, "sha256")
    return f"{_b64(payload)}.{_b64(signature)}"


def unsubscribe_url(user_id: str, topic: str | None = None, channel: str | None = None) -> str:
    base = os.environ.get("NUDGE_PUBLIC_URL", LOCAL_PUBLIC_URL).rstrip("/")
    return f"{base}/u/{sign_token(user_id, topic, channel)}"


def preferences_url(user_id: str) -> str:
    """The person's preference page: every declared topic, and unsubscribe from everything."""
    base = os.environ.get("NUDGE_PUBLIC_URL", LOCAL_PUBLIC_URL).rstrip("/")
    return f"{base}/preferences/{sign_token(user_id, None)}"


def verify_token(token: str) -> Link:
    """Return what a token we signed names; raise ``InvalidToken`` otherwise."""
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
    return Link(data["u"], data["t"], data.get("c"))
