"""``send``: hand a message to a channel's sender."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from nudge.core.dsl.reader import Reader, sub
from nudge.core.dsl.spec import CHANNELS, Send
from nudge.core.dsl.steps.kind import ParseSteps, StepKind

if TYPE_CHECKING:
    from nudge.core.dsl.checks import KnownNames


def parse(r: Reader, value: Any, path: str, _: ParseSteps) -> Send | None:
    start = r.problem_count
    data = r.mapping(
        value, path, required=("channel", "template"), optional=("topic", "transactional")
    )
    if data is None:
        return None
    channel = r.choice(data["channel"], sub(path, "channel"), CHANNELS, "channel")
    template = r.string(data["template"], sub(path, "template"))
    topic = r.string(data["topic"], sub(path, "topic")) if "topic" in data else None
    transactional = r.boolean(data.get("transactional", False), sub(path, "transactional"))
    if r.problem_count > start or channel is None or template is None:
        return None
    return Send(channel, template, topic, bool(transactional))


def words(send: Send) -> str:
    text = f"sends {send.channel} template {send.template}"
    if send.topic is not None:
        text += f" on topic {send.topic}"
    return text + (" (transactional)" if send.transactional else "")


def problems(send: Send, known: KnownNames) -> Iterator[tuple[str, str]]:
    message = known.unknown("template", send.template, known.templates)
    if message:
        yield ".template", message
    elif send.template in known.template_channels:
        channel = known.template_channels[send.template]
        if channel != send.channel:
            yield (
                ".channel",
                f"sends on {send.channel} but template '{send.template}' is for channel {channel}",
            )
    topic_problem = None if send.topic is None else known.undeclared_topic(send.topic)
    if topic_problem:
        yield ".topic", topic_problem
    elif send.channel not in known.topic_channels.get(send.topic or "", (send.channel,)):
        declared = ", ".join(known.topic_channels[send.topic or ""])
        yield (
            ".channel",
            f"sends on {send.channel} but topic '{send.topic}' declares channels: {declared}; "
            "add the channel to the topic or send on one of those",
        )


KIND = StepKind("send", Send, parse, words, problems=problems)
