"""The subscription centre: RFC 8058 one-click unsubscribe, an unsubscribe page and a preference page.

Every link carries a token signed with ``NUDGE_SECRET_KEY`` (``senders.unsubscribe``) that names
the person and, for an unsubscribe link, the topic. A person's choice is landed as an identify
call that sets the traits the delivery rules read (``unsubscribed``,
``cio_subscription_preferences.topics.<topic>``, a flag or a per-channel mapping), exactly as if
the application had sent it, so it takes effect at the next run and stays in the event history.

- ``POST /u/{token}``: the one-click unsubscribe a mail client sends (body
  ``List-Unsubscribe=One-Click``), and the button of the unsubscribe page. It unsubscribes from the
  link's topic, or from everything when the link names none. ``GET /u/{token}`` only shows the page:
  link scanners fetch links, and a fetch must not unsubscribe anyone.
- ``GET /preferences/{token}`` shows every declared topic with the person's current choice on
  each of its channels (``nudge.core.dsl.walk.topic_channels``); ``POST`` saves the form.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from nudge.core import opt_out
from nudge.core.checked_content import WatchedContent
from nudge.core.clock import utc_now
from nudge.core.dsl.spec import Topic
from nudge.core.dsl.walk import topic_channels
from nudge.core.landing.writer import land_messages
from nudge.core.reports import user_traits
from nudge.core.warehouse.connection import WarehouseBusy
from nudge.core.workspace import Workspace
from senders.unsubscribe import InvalidToken, verify_token

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
PREFERENCES_TRAIT = opt_out.TOPIC_PREFERENCES[0]
# How the preference page names each channel (a template global).
TEMPLATES.env.globals["channel_labels"] = {
    "email": "Email",
    "sms": "SMS",
    "push": "Push",
    "in_app": "In-app",
    "webhook": "Webhook",
    "slack": "Slack",
}


@dataclass(frozen=True)
class TopicChoice:
    name: str
    description: str | None
    # (channel, subscribed) for each channel the person chooses on.
    channels: tuple[tuple[str, bool], ...]


def topic_choices(
    topics: Iterable[tuple[Topic, tuple[str, ...]]], traits: Mapping[str, Any]
) -> list[TopicChoice]:
    """Each declared topic (with its channels) and the person's choice on each channel: their
    preference, else the topic's default (read by the opt-out rule the senders apply,
    ``nudge.core.opt_out``)."""
    return [
        TopicChoice(
            topic.name,
            topic.description,
            tuple(
                (
                    channel,
                    not opt_out.topic_off(traits, topic.name, channel, topic.default_subscribed),
                )
                for channel in channels
            ),
        )
        for topic, channels in topics
    ]


def topic_preferences(
    topics: Iterable[tuple[Topic, tuple[str, ...]]], form: Mapping[str, Any]
) -> dict[str, bool | dict[str, bool]]:
    """The preference page's form as the ``topics`` trait: a topic with the same choice on every
    channel shown gets a flag (so it also covers channels added later, and stays in Customer.io's
    plain form), one with mixed choices a mapping of channel to flag."""
    preferences: dict[str, bool | dict[str, bool]] = {}
    for topic, channels in topics:
        chosen = {c: form.get(f"topic:{topic.name}:{c}") == "on" for c in channels}
        same = set(chosen.values())
        preferences[topic.name] = same.pop() if len(same) == 1 else chosen
    return preferences


def with_topics(
    traits: Mapping[str, Any], topics: Mapping[str, bool | dict[str, bool]]
) -> dict[str, Any]:
    """The preference trait with ``topics`` set and the person's other choices (other topics,
    other keys) kept: an identify replaces a trait whole, so landing ``{topics: {<topic>:
    false}}`` alone would reset every other topic to its default."""
    preferences = traits.get(PREFERENCES_TRAIT)
    preferences = dict(preferences) if isinstance(preferences, Mapping) else {}
    kept = preferences.get("topics")
    kept = dict(kept) if isinstance(kept, Mapping) else {}
    return {PREFERENCES_TRAIT: {**preferences, "topics": {**kept, **topics}}}


def channel_off(
    traits: Mapping[str, Any], topic: Topic, channels: Iterable[str], channel: str
) -> dict[str, bool]:
    """The topic's value with ``channel`` off and each of its other ``channels`` as the person
    gets it now (a per-channel mapping in place of a topic-wide flag keeps their meaning)."""
    now = {
        c: not opt_out.topic_off(traits, topic.name, c, topic.default_subscribed) for c in channels
    }
    return {**now, channel: False}


def _identify(user_id: str, traits: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": "identify",
        "userId": user_id,
        "messageId": f"subscription-centre-{uuid4()}",
        "traits": dict(traits),
        "context": {"nudge": {"source": "subscription_centre"}},
    }


class SubscriptionCentre:
    """The pages and the one-click endpoint of one workspace."""

    def __init__(
        self,
        workspace: Workspace,
        content: WatchedContent,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.workspace = workspace
        self.content = content
        self.now = now or utc_now

    def routes(self) -> list[Route]:
        return [
            Route("/u/{token}", self.unsubscribe_page, methods=["GET"]),
            Route("/u/{token}", self.unsubscribe, methods=["POST"]),
            Route("/preferences/{token}", self.preferences_page, methods=["GET"]),
            Route("/preferences/{token}", self.save_preferences, methods=["POST"]),
        ]

    # -- helpers --------------------------------------------------------------------------------

    def _page(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        return TEMPLATES.TemplateResponse(request, name, context, status_code=status)

    def _invalid_link(self, request: Request, error: InvalidToken) -> Response:
        return self._page(request, "invalid_link.html", status=400, reason=str(error))

    def _busy(self, request: Request) -> Response:
        """A run holds the warehouse: nothing changed, try again (``Retry-After``)."""
        busy = self._page(request, "busy.html", status=503)
        busy.headers["Retry-After"] = "30"
        return busy

    def _land(self, user_id: str, traits: Mapping[str, Any]) -> None:
        result = land_messages(
            self.workspace.events_landing_dir, [_identify(user_id, traits)], received_at=self.now()
        )
        if result.rejected:
            raise ValueError(f"the subscription centre made an invalid message: {result.rejected}")

    @property
    def topics(self) -> tuple[tuple[Topic, tuple[str, ...]], ...]:
        """The declared topics with the channels a person chooses on, as the content folder
        holds them now (``WatchedContent``)."""
        content = self.content.current()
        return tuple((topic, topic_channels(content, topic)) for topic in content.topics)

    # -- unsubscribe ----------------------------------------------------------------------------

    def _declared(self, topic: str | None) -> tuple[Topic, tuple[str, ...]] | None:
        return next(((t, c) for t, c in self.topics if t.name == topic), None)

    async def unsubscribe_page(self, request: Request) -> Response:
        try:
            _, topic, channel = verify_token(request.path_params["token"])
        except InvalidToken as error:
            return self._invalid_link(request, error)
        declared = self._declared(topic)
        return self._page(
            request,
            "unsubscribe.html",
            token=request.path_params["token"],
            topic=topic,
            # "only on this channel", when the topic has others to keep
            channel=channel if declared and set(declared[1]) - {channel} else None,
        )

    async def unsubscribe(self, request: Request) -> Response:
        """The topic on every channel (or everything); with the form's ``scope=channel`` (the
        page's second button), the topic on the link's channel only."""
        token = request.path_params["token"]
        try:
            user_id, topic, channel = verify_token(token)
        except InvalidToken as error:
            return self._invalid_link(request, error)
        declared = self._declared(topic)
        if (await request.form()).get("scope") != "channel" or declared is None:
            channel = None
        if topic is None:
            self._land(user_id, {"unsubscribed": True})
        else:
            try:
                traits = user_traits(self.workspace, user_id)
            except WarehouseBusy:
                return self._busy(request)
            value: bool | dict[str, bool] = False
            if channel and declared:
                value = channel_off(traits, declared[0], declared[1], channel)
            self._land(user_id, with_topics(traits, {topic: value}))
        return self._page(request, "unsubscribed.html", token=token, topic=topic, channel=channel)

    # -- preferences ----------------------------------------------------------------------------

    async def preferences_page(self, request: Request) -> Response:
        token = request.path_params["token"]
        try:
            user_id = verify_token(token).user_id
        except InvalidToken as error:
            return self._invalid_link(request, error)
        try:
            traits = user_traits(self.workspace, user_id)
        except WarehouseBusy:
            return self._busy(request)
        return self._page(
            request,
            "preferences.html",
            token=token,
            topics=topic_choices(self.topics, traits),
            unsubscribed=opt_out.unsubscribed(traits),
            saved=False,
        )

    async def save_preferences(self, request: Request) -> Response:
        token = request.path_params["token"]
        try:
            user_id = verify_token(token).user_id
        except InvalidToken as error:
            return self._invalid_link(request, error)
        form = await request.form()
        try:
            current = user_traits(self.workspace, user_id)
        except WarehouseBusy:
            return self._busy(request)
        topics = self.topics
        unsubscribed = form.get("unsubscribed") == "on"
        traits = {
            "unsubscribed": unsubscribed,
            **with_topics(current, topic_preferences(topics, form)),
        }
        self._land(user_id, traits)
        return self._page(
            request,
            "preferences.html",
            token=token,
            topics=topic_choices(topics, traits),
            unsubscribed=unsubscribed,
            saved=True,
        )


def subscription_app(workspace: Workspace) -> Starlette:
    """The subscription centre on its own (the collector mounts the same routes)."""
    centre = SubscriptionCentre(workspace, WatchedContent(workspace))
    centre.topics  # noqa: B018 - check the content now, not at the first request
    return Starlette(routes=centre.routes())
