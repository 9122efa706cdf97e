"""The collector's settings: credentials from the environment, limits, where to write."""

from __future__ import annotations

import os
from dataclasses import dataclass

from nudge.core.landing.messages import MAX_MESSAGE_BYTES, MAX_TRACK_MESSAGE_BYTES
from senders.unsubscribe import MIN_SECRET_LENGTH

DEFAULT_PORT = 8000
MAX_BATCH_BYTES = 500 * 1024


@dataclass(frozen=True)
class Credentials:
    """``write_keys``: Segment write keys (``NUDGE_WRITE_KEYS``, comma-separated);
    ``track``: Customer.io ``(site_id, api_key)`` pairs (``NUDGE_TRACK_CREDENTIALS``,
    comma-separated ``site_id:api_key``); ``app_keys``: Customer.io App API keys for
    transactional sends (``NUDGE_APP_API_KEYS``, comma-separated, sent as a Bearer token).
    An empty set accepts nothing on that API."""

    write_keys: frozenset[str] = frozenset()
    track: frozenset[tuple[str, str]] = frozenset()
    app_keys: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls) -> Credentials:
        write_keys = {k.strip() for k in os.environ.get("NUDGE_WRITE_KEYS", "").split(",")}
        track = set()
        for pair in os.environ.get("NUDGE_TRACK_CREDENTIALS", "").split(","):
            if pair.strip():
                site_id, colon, api_key = pair.strip().partition(":")
                if not colon or not site_id or not api_key:
                    raise ValueError(
                        "NUDGE_TRACK_CREDENTIALS must be comma-separated site_id:api_key pairs; "
                        f"{pair.strip()[:20]!r}... is not one."
                    )
                track.add((site_id, api_key))
        app_keys = {k.strip() for k in os.environ.get("NUDGE_APP_API_KEYS", "").split(",")}
        return cls(
            write_keys=frozenset(k for k in write_keys if k),
            track=frozenset(track),
            app_keys=frozenset(k for k in app_keys if k),
        )


@dataclass(frozen=True)
class Limits:
    """``batch_bytes``: a request body, also once decompressed (Segment's batch limit);
    ``body_seconds``: time allowed for a body; ``header_seconds``: for a request's line and
    headers (``collector.slow_headers``). One message is held, when it is landed, to
    ``message_bytes`` from the Segment API (Segment's 32 KB) and to ``track_message_bytes``
    from the Track API (room for Customer.io's 100 KB of event data)."""

    batch_bytes: int = MAX_BATCH_BYTES
    body_seconds: float = 10.0
    header_seconds: float = 10.0
    message_bytes: int = MAX_MESSAGE_BYTES
    track_message_bytes: int = MAX_TRACK_MESSAGE_BYTES

    @classmethod
    def from_env(cls) -> Limits:
        """``NUDGE_COLLECTOR_BODY_SECONDS`` (default 10) is the time allowed for a body,
        ``NUDGE_COLLECTOR_HEADER_SECONDS`` (default 10) for a request's line and headers."""
        return cls(
            body_seconds=_seconds("NUDGE_COLLECTOR_BODY_SECONDS", cls.body_seconds),
            header_seconds=_seconds("NUDGE_COLLECTOR_HEADER_SECONDS", cls.header_seconds),
        )


def _seconds(name: str, default: float) -> float:
    text = os.environ.get(name, str(default))
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < 3600:
        raise ValueError(f"{name} must be a number of seconds (0-3600), not {text!r}.")
    return seconds


def port_from_env() -> int:
    text = os.environ.get("NUDGE_COLLECTOR_PORT", str(DEFAULT_PORT))
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"NUDGE_COLLECTOR_PORT must be a port number (1-65535), not {text!r}.")
    return int(text)


@dataclass(frozen=True)
class InboxSettings:
    """The browser side of the in-app inbox (docs/inbox.md). ``secret``: the key of each
    person's hash (``NUDGE_INBOX_SECRET``; unset: browsers get no inbox); ``origins``: the web
    origins allowed to call it from a page of theirs (``NUDGE_INBOX_ORIGINS``, comma-separated)."""

    secret: bytes | None = None
    origins: tuple[str, ...] = ()

    @classmethod
    def from_env(cls) -> InboxSettings:
        secret = os.environ.get("NUDGE_INBOX_SECRET", "")
        if secret and len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"NUDGE_INBOX_SECRET must be a random secret of at least {MIN_SECRET_LENGTH} "
                "characters (for example the output of `python -c 'import secrets; "
                "print(secrets.token_hex(32))'`)."
            )
        origins = [o.strip() for o in os.environ.get("NUDGE_INBOX_ORIGINS", "").split(",")]
        for origin in filter(None, origins):
            scheme, _, host = origin.partition("://")
            if scheme not in ("http", "https") or not host or "/" in host:
                raise ValueError(
                    "NUDGE_INBOX_ORIGINS must be comma-separated origins such as "
                    f"https://app.example.com (scheme and host, no path), not {origin!r}."
                )
        return cls(secret=secret.encode() or None, origins=tuple(filter(None, origins)))
