"""What every HTTP provider shares: a pooled session, limits, and what a failure means.

One ``requests.Session`` per provider, its connection pool as large as the provider's
concurrency (``HttpLimits.concurrency`` messages in flight at once, see ``senders.dispatch``),
no retries inside urllib3 (it does not retry a POST anyway): retries are the dispatcher's, with
backoff and jitter, honouring ``Retry-After``. A token bucket (``HttpLimits.rate_limit``) spaces
the requests of all threads.

The session does not trust the environment (``trust_env`` off): requests would otherwise look up
proxies and ``~/.netrc`` on every request, which costs as much CPU as a fifth of the request
itself, and would hand a provider whatever credentials ``~/.netrc`` holds for its host. What the
environment says that a provider call needs is read here instead: a CA bundle named by
``REQUESTS_CA_BUNDLE`` (or ``CURL_CA_BUNDLE``), read once when the provider starts, and the
proxies of ``HTTP_PROXY``/``HTTPS_PROXY``/``NO_PROXY``, applied per request only where one is
set (outbound traffic of many companies must go through one).

A failure is classified by where it happened, as for SMTP (docs/delivery.md):

- no connection (refused, DNS, connect timeout): nothing was sent; transient, safe to retry;
- the request was sent and no answer came (read timeout, connection dropped): the provider may
  have acted on it. A provider that drops a repeated request carrying the same key
  (``deduplicated``) gets it again later; any other makes the outcome unknown, never resent;
- an answer: 2xx sent; 408, 429 and 5xx transient (with ``Retry-After``); anything else is
  classified by the provider module, permanent by default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies, getproxies
from urllib3.exceptions import NewConnectionError

from nudge.core.clock import utc_now
from senders.providers import SendOutcome
from senders.rate_limit import TokenBucket
from senders.retry import parse_retry_after
from senders.settings import env_count, env_number, env_seconds

TRANSIENT_STATUSES = frozenset({408, 429}) | frozenset(range(500, 600))


@dataclass(frozen=True, kw_only=True)
class HttpLimits:
    """``timeout`` for connecting and for each read, ``concurrency`` messages in flight at once,
    ``rate_limit`` requests per second (None: no limit)."""

    timeout: float = 10.0
    concurrency: int = 16
    rate_limit: float | None = None

    def __post_init__(self) -> None:
        if self.timeout <= 0 or self.concurrency < 1:
            raise ValueError("HTTP timeout must be more than 0 and concurrency at least 1")

    @classmethod
    def values_from_env(cls, env: Any, prefix: str) -> dict[str, Any]:
        """``{prefix}_TIMEOUT``, ``{prefix}_CONCURRENCY`` and ``{prefix}_RATE_LIMIT``, defaulting
        to the class's own defaults (a provider's settings may declare others)."""
        return {
            "timeout": env_seconds(env, f"{prefix}_TIMEOUT", cls.timeout),
            "concurrency": env_count(env, f"{prefix}_CONCURRENCY", cls.concurrency, minimum=1),
            "rate_limit": env_number(
                env, f"{prefix}_RATE_LIMIT", cls.rate_limit, "requests per second"
            ),
        }


class HttpClient:
    """A pooled session with the provider's limits; ``call`` answers a response or the outcome
    of a request that got none."""

    def __init__(self, label: str, limits: HttpLimits):
        self.label = label
        self.limits = limits
        self.bucket = TokenBucket(limits.rate_limit) if limits.rate_limit else None
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = (
            os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        )
        # Any proxy at all in the environment: each request then asks which applies to its URL.
        self.proxied = any(key != "no" for key in getproxies())
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=limits.concurrency, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def call(
        self, method: str, url: str, *, deduplicated: bool = False, **kwargs: Any
    ) -> requests.Response | SendOutcome:
        if self.bucket is not None:
            self.bucket.acquire()
        if self.proxied:
            kwargs.setdefault("proxies", get_environ_proxies(url))
        try:
            return self.session.request(method, url, timeout=self.limits.timeout, **kwargs)
        except requests.exceptions.ConnectTimeout as err:
            return SendOutcome.failed(self._why("connect timed out", err), permanent=False,
                                      fault="timeout")  # fmt: skip
        except requests.exceptions.ConnectionError as err:
            if _never_connected(err):
                reason = self._why("connection failed", err)
                return SendOutcome.failed(reason, permanent=False, fault="unreachable")
            return self._no_answer("connection dropped before the answer", err, deduplicated)
        except requests.exceptions.Timeout as err:
            return self._no_answer("no answer in time", err, deduplicated, fault="timeout")
        except requests.exceptions.RequestException as err:
            return SendOutcome.failed(self._why("request refused", err), permanent=True)

    def _no_answer(
        self, what: str, err: Exception, deduplicated: bool, *, fault: Any = None
    ) -> SendOutcome:
        if deduplicated:
            return SendOutcome.failed(self._why(what, err), permanent=False, fault=fault)
        return SendOutcome.unknown(self._why(what, err), fault=fault)

    def _why(self, what: str, err: BaseException) -> str:
        return f"{self.label}: {what} ({type(err).__name__})"

    def close(self) -> None:
        self.session.close()


def _never_connected(err: BaseException) -> bool:
    """The connection was never made: the request cannot have reached the provider."""
    seen: BaseException | None = err
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, (NewConnectionError, ConnectionRefusedError)):
            return True
        nested = seen.args[0] if seen.args and isinstance(seen.args[0], BaseException) else None
        seen = getattr(seen, "reason", None) or nested or seen.__cause__ or seen.__context__
    return False


def status_outcome(
    label: str, response: requests.Response, *, message_id: str | None
) -> SendOutcome:
    """2xx sent; 408, 429, 5xx transient (with Retry-After); any other status permanent."""
    if 200 <= response.status_code < 300:
        return SendOutcome.sent(message_id)
    reason = f"{label}: HTTP {response.status_code}: {response.text[:300].strip()}"
    if response.status_code in TRANSIENT_STATUSES:
        now = utc_now()
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now=now)
        return SendOutcome.failed(reason, permanent=False, retry_after=retry_after)
    return SendOutcome.failed(reason, permanent=True)


def json_body(response: requests.Response) -> Any:
    """The response's JSON, or None when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None
