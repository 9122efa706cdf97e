"""Delivery settings read from the environment once, validated, with errors naming the variable.

``DispatchSettings`` bounds one dispatch: immediate retries of a transient failure and the pause
between them, the circuit breaker's threshold, and the time a run may spend handing messages over.
The SMTP settings (``senders.email.SmtpSettings``) read their variables with the same helpers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta


def env_seconds(env: Mapping[str, str], name: str, default: float, *, zero: bool = False) -> float:
    """A positive number of seconds from ``env[name]`` (0 allowed when ``zero``)."""
    return _env_positive(env, name, default, "seconds", zero=zero)


def env_count(env: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    """A whole number of at least ``minimum`` from ``env[name]``."""
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise ValueError(f"{name}={text!r} is not a whole number; set it to {minimum} or more")
    return value


@dataclass(frozen=True)
class DispatchSettings:
    """``send_retries`` immediate retries of a transient failure, ``retry_pause`` their base
    pause (jittered, doubling), ``breaker_failures`` failed connections in a row that stop a
    provider for the rest of the run, ``time_budget`` the longest a dispatch hands messages over
    (None: no limit); what is left stays pending for the next run."""

    send_retries: int = 2
    retry_pause: timedelta = timedelta(milliseconds=200)
    breaker_failures: int = 3
    time_budget: timedelta | None = timedelta(hours=1)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DispatchSettings:
        """Read ``NUDGE_SEND_RETRIES``, ``NUDGE_SEND_RETRY_PAUSE``, ``NUDGE_BREAKER_FAILURES``
        and ``NUDGE_SEND_TIME_BUDGET`` (seconds, 0 for no limit)."""
        env = os.environ if env is None else env
        default_budget = cls.time_budget.total_seconds() if cls.time_budget else 0.0
        budget = env_seconds(env, "NUDGE_SEND_TIME_BUDGET", default_budget, zero=True)
        return cls(
            send_retries=env_count(env, "NUDGE_SEND_RETRIES", cls.send_retries, minimum=0),
            retry_pause=timedelta(
                seconds=env_seconds(
                    env, "NUDGE_SEND_RETRY_PAUSE", cls.retry_pause.total_seconds(), zero=True
                )
            ),
            breaker_failures=env_count(
                env, "NUDGE_BREAKER_FAILURES", cls.breaker_failures, minimum=1
            ),
            time_budget=timedelta(seconds=budget) if budget else None,
        )


def env_number(env: Mapping[str, str], name: str, default: float | None, unit: str) -> float | None:
    """A number more than 0 from ``env[name]`` (``unit`` names it in the error)."""
    return _env_positive(env, name, default, unit, zero=False)


def _env_positive(
    env: Mapping[str, str], name: str, default: float | None, unit: str, *, zero: bool
) -> float | None:
    """A finite number from ``env[name]``, more than 0 (or 0 when ``zero``); ``default`` when
    unset; a sentence naming the variable when it is anything else."""
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (0 <= value < float("inf") if zero else 0 < value < float("inf")):
        allowed = "0 or more" if zero else "more than 0"
        raise ValueError(f"{name}={text!r} is not a number of {unit}; set it to {allowed}")
    return value


def env_required(env: Mapping[str, str], name: str, needed_by: str) -> str:
    """``env[name]``, which ``needed_by`` cannot work without."""
    value = env.get(name, "").strip()
    if not value:
        raise ValueError(f"{name} is not set; {needed_by} needs it")
    return value


def env_url(env: Mapping[str, str], name: str, default: str) -> str:
    """An http(s) URL from ``env[name]``, without a trailing slash."""
    value = env.get(name, "").strip() or default
    if not value.startswith(("http://", "https://")) or len(value.split("://", 1)[1]) == 0:
        raise ValueError(f"{name}={value!r} is not an http(s) URL; set it like https://host")
    return value.rstrip("/")
