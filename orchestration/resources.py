"""Provider configuration. Secrets come from the environment (``EnvVar``), never from files.

The settings are parsed and validated once, by ``SmtpSettings.from_env``; the resource's fields
are that parse, and ``open_provider`` turns them back into the same ``SmtpSettings``.
"""

from __future__ import annotations

import os

import dagster as dg

from senders.capture import CapturingProvider
from senders.email import SmtpEmailProvider, SmtpSettings
from senders.providers import Provider
from senders.settings import DispatchSettings
from senders.unsubscribe import require_live_settings

_SECRETS = {"password": "NUDGE_SMTP_PASSWORD", "username": "NUDGE_SMTP_USERNAME"}


class EmailDelivery(dg.ConfigurableResource):
    """Where email goes: ``smtp`` (the default) or ``capture`` (the test provider)."""

    provider: str = "smtp"
    smtp_host: str = SmtpSettings.host
    smtp_port: int = SmtpSettings.port
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = SmtpSettings.starttls
    sender: str = SmtpSettings.sender
    smtp_timeout: float = SmtpSettings.timeout
    smtp_data_timeout: float = SmtpSettings.data_timeout

    def settings(self) -> SmtpSettings:
        return SmtpSettings(
            host=self.smtp_host,
            port=self.smtp_port,
            username=self.smtp_username,
            password=self.smtp_password,
            starttls=self.smtp_starttls,
            sender=self.sender,
            timeout=self.smtp_timeout,
            data_timeout=self.smtp_data_timeout,
        )

    def open_provider(self) -> Provider:
        if self.provider == "capture":
            return CapturingProvider("email")
        if self.provider != "smtp":
            raise ValueError(f"email provider {self.provider!r}: expected 'smtp' or 'capture'")
        require_live_settings()  # links signed with a public key or pointing nowhere: refuse
        return SmtpEmailProvider(self.settings())


def email_delivery_from_env() -> EmailDelivery:
    """The resource as configured by NUDGE_EMAIL_PROVIDER, NUDGE_EMAIL_FROM and NUDGE_SMTP_*
    (parsed by ``SmtpSettings.from_env``); the username and password stay ``EnvVar``s."""
    env = os.environ
    parsed = SmtpSettings.from_env()
    secrets = {f"smtp_{field}": dg.EnvVar(name) for field, name in _SECRETS.items() if name in env}
    return EmailDelivery(
        provider=env.get("NUDGE_EMAIL_PROVIDER", "smtp"),
        smtp_host=parsed.host,
        smtp_port=parsed.port,
        smtp_starttls=parsed.starttls,
        sender=parsed.sender,
        smtp_timeout=parsed.timeout,
        smtp_data_timeout=parsed.data_timeout,
        **secrets,
    )


def check_delivery_settings() -> None:
    """Raise what a run's send step would refuse (a malformed variable, an unknown provider, a
    live provider without a real secret key and public URL), before the run starts any stage."""
    DispatchSettings.from_env()
    provider = email_delivery_from_env().provider
    if provider not in ("smtp", "capture"):
        raise ValueError(f"NUDGE_EMAIL_PROVIDER={provider!r}: expected 'smtp' or 'capture'")
    if provider == "smtp":
        require_live_settings()
