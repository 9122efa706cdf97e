"""The one list of providers: which channel each serves, its settings, how it is opened.

Each channel's provider is chosen by ``NUDGE_<CHANNEL>_PROVIDER`` (``NUDGE_EMAIL_PROVIDER``,
``NUDGE_SMS_PROVIDER``, ``NUDGE_PUSH_PROVIDER``, ``NUDGE_WEBHOOK_PROVIDER``,
``NUDGE_SLACK_PROVIDER``, ``NUDGE_IN_APP_PROVIDER``); ``none`` leaves the channel's messages
pending. ``choose_providers`` reads and validates every variable once, with one sentence naming
the variable that is wrong; the Dagster resources (``orchestration.resources``) are built from
its result, and ``open_provider`` turns a choice back into a provider.

Live providers (everything but ``capture`` and the local ``inbox``) do not start without a real
secret key and public URL for the links they carry (``senders.unsubscribe``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nudge.core.dsl.spec import Content, Send
from nudge.core.dsl.walk import iter_steps
from nudge.core.segments.data_checks import DataWarning
from nudge.core.workspace import Workspace
from senders.capture import CapturingProvider
from senders.channels.fcm import FcmPushProvider, FcmSettings
from senders.channels.in_app import InboxProvider
from senders.channels.postmark import PostmarkEmailProvider, PostmarkSettings
from senders.channels.sendgrid import SendgridEmailProvider, SendgridSettings
from senders.channels.slack import SlackProvider, SlackSettings
from senders.channels.twilio import TwilioSettings, TwilioSmsProvider
from senders.channels.webhook import WebhookProvider, WebhookSettings
from senders.email import SmtpEmailProvider, SmtpSettings
from senders.providers import Provider
from senders.unsubscribe import require_live_settings

CHANNELS = ("email", "sms", "push", "webhook", "slack", "in_app")
NO_PROVIDER = "none"
DEFAULT_PROVIDER = {"email": "smtp", "in_app": "inbox"}  # every other channel: none


@dataclass(frozen=True)
class ProviderPlaces:
    """Where providers keep or land what they learn: the events landing folder (device
    removals, webhook answers) and the in-app inbox file."""

    landing_dir: Path
    inbox_path: Path

    @classmethod
    def of(cls, workspace: Workspace) -> ProviderPlaces:
        return cls(workspace.events_landing_dir, workspace.inbox_path)


@dataclass(frozen=True)
class ProviderSpec:
    """``settings_type`` has ``from_env(env)`` (None: no settings); ``secrets`` maps a settings
    field to the variable it comes from (a Dagster ``EnvVar``, never a value in run config)."""

    channel: str
    name: str
    open: Callable[[Any, ProviderPlaces], Provider]
    settings_type: Any = None
    secrets: Mapping[str, str] = field(default_factory=dict)
    live: bool = True


def _capture(channel: str) -> ProviderSpec:
    return ProviderSpec(channel, "capture", lambda _s, _p: CapturingProvider(channel), live=False)


REGISTRY: dict[tuple[str, str], ProviderSpec] = {
    (spec.channel, spec.name): spec
    for spec in (
        ProviderSpec("email", "smtp", lambda s, _p: SmtpEmailProvider(s), SmtpSettings,
                     {"username": "NUDGE_SMTP_USERNAME", "password": "NUDGE_SMTP_PASSWORD"}),
        ProviderSpec("email", "sendgrid", lambda s, _p: SendgridEmailProvider(s),
                     SendgridSettings, {"api_key": "NUDGE_SENDGRID_API_KEY"}),
        ProviderSpec("email", "postmark", lambda s, _p: PostmarkEmailProvider(s),
                     PostmarkSettings, {"server_token": "NUDGE_POSTMARK_SERVER_TOKEN"}),
        ProviderSpec("sms", "twilio", lambda s, _p: TwilioSmsProvider(s), TwilioSettings,
                     {"auth_token": "NUDGE_TWILIO_AUTH_TOKEN"}),
        ProviderSpec("push", "fcm", lambda s, p: FcmPushProvider(s, p.landing_dir), FcmSettings),
        ProviderSpec("webhook", "http", lambda s, p: WebhookProvider(s, p.landing_dir),
                     WebhookSettings, {"secret": "NUDGE_WEBHOOK_SECRET"}),
        ProviderSpec("slack", "incoming_webhook", lambda s, _p: SlackProvider(s), SlackSettings),
        ProviderSpec("in_app", "inbox", lambda _s, p: InboxProvider(p.inbox_path), live=False),
        *(_capture(channel) for channel in CHANNELS),
    )
}  # fmt: skip


def provider_variable(channel: str) -> str:
    return f"NUDGE_{channel.upper()}_PROVIDER"


def provider_names(channel: str) -> list[str]:
    return [name for (c, name) in REGISTRY if c == channel]


@dataclass(frozen=True)
class ProviderChoice:
    """A channel's provider as configured: its spec and its parsed settings (None for
    providers without settings)."""

    spec: ProviderSpec
    settings: Any


def choose_provider(channel: str, env: Mapping[str, str] | None = None) -> ProviderChoice | None:
    """The channel's provider with its settings parsed and validated (``ValueError`` naming the
    variable), or None when the channel has none. Settings of other channels are not read, so a
    mistake in one channel's variables never stops another's sends."""
    env = os.environ if env is None else env
    variable = provider_variable(channel)
    name = env.get(variable, "").strip().lower() or DEFAULT_PROVIDER.get(channel, NO_PROVIDER)
    if name == NO_PROVIDER:
        return None
    spec = REGISTRY.get((channel, name))
    if spec is None:
        expected = ", ".join(repr(n) for n in [*provider_names(channel), NO_PROVIDER])
        raise ValueError(f"{variable}={name!r} is not a {channel} provider; expected {expected}")
    settings = spec.settings_type.from_env(env) if spec.settings_type else None
    return ProviderChoice(spec, settings)


def choose_providers(
    env: Mapping[str, str] | None = None, *, require_secrets: bool = True
) -> dict[str, ProviderChoice]:
    """Every channel with a provider (``choose_provider``), live providers checked for a real
    secret key and public URL unless ``require_secrets`` is false (loading the Dagster
    definitions: a provider checks again when a run opens it)."""
    chosen = {
        channel: choice
        for channel in CHANNELS
        if (choice := choose_provider(channel, env)) is not None
    }
    if require_secrets and any(choice.spec.live for choice in chosen.values()):
        require_live_settings()
    return chosen


def open_provider(choice: ProviderChoice, places: ProviderPlaces) -> Provider:
    if choice.spec.live:
        require_live_settings()
    return choice.spec.open(choice.settings, places)


def unserved_send_warnings(
    content: Content, env: Mapping[str, str] | None = None
) -> list[DataWarning]:
    """A warning per journey send step whose channel has no provider in this environment (its
    messages stay pending), naming the variable to set (``nudge validate``). A malformed
    provider variable is one warning naming it."""
    try:
        chosen = choose_providers(env, require_secrets=False)
    except ValueError as err:
        return [DataWarning("", "", "", f"providers not checked: {err}")]
    warnings = []
    for journey in content.journeys:
        for path, step in iter_steps(journey.steps):
            send = step.action
            if not isinstance(send, Send) or send.channel in chosen:
                continue
            names = " or ".join(provider_names(send.channel))
            warnings.append(
                DataWarning(
                    journey.origin.file,
                    journey.origin.item,
                    f"{path}.send.channel",
                    f"step {step.id!r} sends {send.channel} but no {send.channel} provider is "
                    f"configured, so its messages stay pending; set "
                    f"{provider_variable(send.channel)} ({names})",
                )
            )
    return warnings
