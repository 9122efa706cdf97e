"""Delivery resources, one per channel, built from the provider registry (``senders.registry``).

The settings are parsed and validated once, by ``choose_providers`` (each provider's
``from_env``); a channel's resource has one field per setting of its provider, holding that parse,
except secrets, which stay ``EnvVar``s (Dagster shows the variable, never the value).
``open_provider`` turns the fields back into the same settings object. The resource classes are
made from the settings dataclasses, so a provider setting added there is a resource field at once.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import typing
from typing import Any

import dagster as dg
from pydantic import create_model

from nudge.core.workspace import Workspace
from senders.providers import Provider
from senders.registry import (
    CHANNELS,
    NO_PROVIDER,
    REGISTRY,
    ProviderChoice,
    ProviderPlaces,
    ProviderSpec,
    choose_providers,
    open_provider,
)
from senders.settings import DispatchSettings


class ChannelDelivery(dg.ConfigurableResource):
    """Where one channel's messages go: ``provider`` (``none``: they stay pending) and that
    provider's settings as fields (see ``delivery_resources``)."""

    channel: str
    provider: str = NO_PROVIDER

    def open_provider(self, workspace: Workspace) -> Provider | None:
        """The configured provider, or None for a channel without one."""
        if self.provider == NO_PROVIDER:
            return None
        spec = REGISTRY[(self.channel, self.provider)]
        fields = {k: getattr(self, k) for k in _setting_fields(spec)}
        settings = spec.settings_type(**fields) if spec.settings_type else None
        return open_provider(ProviderChoice(spec, settings), ProviderPlaces.of(workspace))


def _setting_fields(spec: ProviderSpec) -> dict[str, Any]:
    """``{field: type}`` of the provider's settings dataclass."""
    if spec.settings_type is None:
        return {}
    hints = typing.get_type_hints(spec.settings_type)
    return {f.name: hints[f.name] for f in dataclasses.fields(spec.settings_type)}


@functools.cache
def _resource_class(channel: str, provider: str) -> type[ChannelDelivery]:
    spec = REGISTRY[(channel, provider)]
    fields: dict[str, Any] = {
        name: (kind if name not in spec.secrets else kind | None, None)
        for name, kind in _setting_fields(spec).items()
    }
    name = f"{''.join(p.title() for p in f'{channel}_{provider}'.split('_'))}Delivery"
    return create_model(name, __base__=ChannelDelivery, **fields)


def delivery_resource(channel: str, choice: ProviderChoice | None) -> ChannelDelivery:
    """The channel's resource: the parsed settings as fields, secrets as ``EnvVar``s."""
    if choice is None:
        return ChannelDelivery(channel=channel)
    spec = choice.spec
    values: dict[str, Any] = {}
    for name in _setting_fields(spec):
        variable = spec.secrets.get(name)
        if variable is None:
            values[name] = getattr(choice.settings, name)
        elif variable in os.environ:
            values[name] = dg.EnvVar(variable)
    return _resource_class(channel, spec.name)(channel=channel, provider=spec.name, **values)


def delivery_resources() -> dict[str, ChannelDelivery]:
    """One resource per channel, keyed by the channel name, as the environment configures. The
    UI loads without the live secrets; a sender asset refuses to send without them."""
    chosen = choose_providers(require_secrets=False)
    return {channel: delivery_resource(channel, chosen.get(channel)) for channel in CHANNELS}


def check_delivery_settings() -> None:
    """Raise what a run's send steps would refuse (a malformed variable, an unknown provider, a
    live provider without a real secret key and public URL), before the run starts any stage."""
    DispatchSettings.from_env()
    choose_providers()
