"""One message outside a journey run: a preview of a template for a user, and a test send.

Both go through the dispatch's render path (``senders.dispatch.render_message``: the same
context, the same checks, layouts and derived text), with the user's traits read from
``marts.dim_users`` as a dispatch reads them. A test send goes to an address the operator gives,
through the provider configured for the template's channel, once: its ledger row is written
before the hand-over and completed after it, with statuses of its own (``TEST_STATUSES``) that
no journey report, frequency cap, message condition or send check counts as a send.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import duckdb

from nudge.core.clock import utc_now
from nudge.core.dsl.spec import Content, Send
from nudge.core.dsl.walk import iter_steps
from senders.dispatch import render_message, send_once
from senders.ledger import transaction
from senders.policy import USER_ADDRESS_SQL
from senders.providers import Provider, RenderedMessage, SendOutcome
from senders.templates import TemplateRenderer

# The ledger statuses of test sends: written before the hand-over, then the outcome. A crash in
# between leaves ``test_sending`` (no run reconciles or resends it).
TEST_STATUSES = ("test_sending", "test_sent", "test_failed")
TEST_PREFIX = "[TEST] "
# The field of each channel that says what a message is about, marked with ``TEST_PREFIX``.
_TITLE_FIELDS = {"email": "subject", "push": "title", "in_app": "title", "sms": "body",
                 "slack": "text"}  # fmt: skip


@dataclass(frozen=True)
class Recipient:
    """A user as the dispatch sees them: traits (as JSON text) and channel addresses."""

    user_id: str
    traits: str | None
    email: str | None
    phone: str | None

    def address(self, channel: str) -> str | None:
        return {"email": self.email, "sms": self.phone, "in_app": self.user_id}.get(channel)


def read_recipient(con: duckdb.DuckDBPyConnection, user_id: str) -> Recipient | None:
    """``user_id``'s row of ``marts.dim_users`` (traits cast to text as ``senders.policy`` does),
    or None when there is no such user."""
    row = con.execute(
        f"""select cast(u.traits as varchar), {USER_ADDRESS_SQL["email"]}, {USER_ADDRESS_SQL["sms"]}
            from marts.dim_users u where u.user_id = ?""",
        [user_id],
    ).fetchone()
    return None if row is None else Recipient(user_id, *row)


def with_traits(traits: str | None, extra: Mapping[str, Any] | None) -> str | None:
    """Traits JSON text with ``extra`` laid over it (``--data``: try a trait's value)."""
    if not extra:
        return traits
    return json.dumps({**(json.loads(traits) if traits else {}), **extra})


@dataclass(frozen=True)
class SendStep:
    journey: str
    step: str
    topic: str | None


def sending_step(content: Content, template: str) -> SendStep | None:
    """The first journey step that sends ``template``: a preview renders as that step would."""
    for journey in content.journeys:
        for _, step in iter_steps(journey.steps):
            send = step.action
            if isinstance(send, Send) and send.template == template and step.id is not None:
                return SendStep(journey.name, step.id, send.topic)
    return None


def render_one(
    content: Content,
    template: str,
    *,
    user_id: str,
    traits: str | None,
    event: Mapping[str, Any] | None,
    address: str,
    key_prefix: str,
) -> RenderedMessage:
    """``template`` rendered for one user, as the dispatch renders an outbox row of the step that
    sends it (``RenderError`` names a missing variable, or says the template is unknown)."""
    renderer = TemplateRenderer(content.templates, content.layouts)
    found = renderer.template(template)
    step = sending_step(content, template) or SendStep("", "", None)
    delivery_id = str(uuid.uuid4())
    row = {
        "template": template,
        "channel": found.channel,
        "user_id": user_id,
        "topic": step.topic,
        "traits": traits,
        "event_properties": json.dumps(event) if event is not None else None,
        "journey": step.journey,
        "step": step.step,
        "delivery_id": delivery_id,
        "idempotency_key": f"{key_prefix}:{delivery_id}",
        "address": address,
    }
    return render_message(renderer, row)


def as_test(message: RenderedMessage) -> RenderedMessage:
    """The message marked as a test: ``[TEST] `` before its subject (title, SMS body...)."""
    field = _TITLE_FIELDS.get(message.channel)
    if field is None or not isinstance(message.content.get(field), str):
        return message
    return replace(
        message, content={**message.content, field: TEST_PREFIX + message.content[field]}
    )


def suppressed_reason(con: duckdb.DuckDBPyConnection, channel: str, address: str) -> str | None:
    """Why ``address`` must never get mail again (a hard bounce, a complaint), or None."""
    row = con.execute(
        "select reason from nudge.suppressed_addresses where channel = ? and address = ?",
        [channel, address.strip().lower()],
    ).fetchone()
    return None if row is None else str(row[0])


def send_test(
    con: duckdb.DuckDBPyConnection,
    provider: Provider,
    message: RenderedMessage,
) -> SendOutcome:
    """Hand ``message`` to ``provider`` once, recorded in the delivery ledger as a test send:
    the row (``test_sending``) is committed first, then completed with the outcome."""
    now = utc_now()
    with transaction(con):
        con.execute(
            """insert into nudge.delivery_ledger (idempotency_key, delivery_id, as_of, user_id,
                   channel, template, topic, provider, address, status, queued_at, attempted_at,
                   attempts)
               values (?, ?, ?, ?, ?, ?, ?, ?, ?, 'test_sending', ?, ?, 1)""",
            [message.idempotency_key, message.delivery_id, now, message.user_id, message.channel,
             message.template, message.topic, provider.name, message.address, now, now],
        )  # fmt: skip
    try:
        outcome = send_once(provider, message)
    finally:
        provider.close()
    with transaction(con):
        con.execute(
            """update nudge.delivery_ledger
               set status = ?, reason = ?, provider_message_id = ?, completed_at = ?,
                   permanent = ?, details = ?
               where idempotency_key = ?""",
            [f"test_{outcome.status}", outcome.reason, outcome.provider_message_id, utc_now(),
             outcome.status == "failed", json.dumps(outcome.details) if outcome.details else None,
             message.idempotency_key],
        )  # fmt: skip
    return outcome
