"""Provider configuration. Secrets come from the environment (``EnvVar``), never from files."""

from __future__ import annotations

import os

import dagster as dg

from senders.capture import CapturingProvider
from senders.email import SmtpEmailProvider, SmtpSettings
from senders.providers import Provider
from senders.unsubscribe import require_live_settings


class EmailDelivery(dg.ConfigurableResource):
    """Where email goes: ``smtp`` (the default) or ``capture`` (the test provider)."""

    provider: str = "smtp"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    sender: str = "nudge <nudge@localhost>"

    def open_provider(self) -> Provider:
        if self.provider == "capture":
            return CapturingProvider("email")
        if self.provider != "smtp":
            raise ValueError(f"email provider {self.provider!r}: expected 'smtp' or 'capture'")
        require_live_settings()  # links signed with a public key or pointing nowhere: refuse
        return SmtpEmailProvider(
            SmtpSettings(
                host=self.smtp_host,
                port=self.smtp_port,
                username=self.smtp_username,
                password=self.smtp_password,
                starttls=self.smtp_starttls,
                sender=self.sender,
            )
        )


def email_delivery_from_env() -> EmailDelivery:
    """The resource as configured by NUDGE_EMAIL_PROVIDER and NUDGE_SMTP_* variables."""
    env = os.environ
    secrets = {
        field: dg.EnvVar(name)
        for field, name in (
            ("smtp_username", "NUDGE_SMTP_USERNAME"),
            ("smtp_password", "NUDGE_SMTP_PASSWORD"),
        )
        if name in env
    }
    return EmailDelivery(
        provider=env.get("NUDGE_EMAIL_PROVIDER", "smtp"),
        smtp_host=env.get("NUDGE_SMTP_HOST", "127.0.0.1"),
        smtp_port=int(env.get("NUDGE_SMTP_PORT", "8025")),
        smtp_starttls=env.get("NUDGE_SMTP_STARTTLS", "").lower() in {"1", "true", "yes"},
        sender=env.get("NUDGE_EMAIL_FROM", "nudge <nudge@localhost>"),
        **secrets,
    )
