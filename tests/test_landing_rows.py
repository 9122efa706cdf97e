"""The collector's one-pass row (``quick_row``) never disagrees with the full check: for any
message it either declines or gives exactly ``encode_row(normalise_message(...))``, and it does
take the messages SDKs send."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from nudge.core.landing.journal import encode_row
from nudge.core.landing.messages import MAX_MESSAGE_BYTES, InvalidMessage, normalise_message
from nudge.core.landing.rows import journal_row, quick_row, received_micros

RECEIVED = datetime(2026, 1, 1, 12, 0, 0)
MAX = MAX_MESSAGE_BYTES


def track(**fields: Any) -> dict[str, Any]:
    return {"type": "track", "userId": "u", "event": "e", **fields}


def full_check(message: Any, received: datetime, max_bytes: int) -> list[Any] | None:
    try:
        return encode_row(normalise_message(message, received, max_bytes=max_bytes))
    except InvalidMessage:
        return None


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
ids = st.one_of(
    st.none(),
    st.just(""),
    st.text(max_size=40),
    st.text(min_size=30, max_size=160),
    st.text(alphabet="é𝄞", min_size=30, max_size=45),
    st.integers(),
    st.booleans(),
    st.lists(st.text(max_size=3), max_size=2),
)
moments = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999999)
)
offsets = st.sampled_from(
    [None, UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]
)


@st.composite
def iso_texts(draw: st.DrawFn) -> str:
    moment = draw(moments).replace(tzinfo=draw(offsets))
    text = moment.isoformat(sep=draw(st.sampled_from(["T", " "])))
    if text.endswith("+00:00") and draw(st.booleans()):
        text = text.removesuffix("+00:00") + "Z"
    return draw(st.sampled_from(["", " "])) + text


timestamps = st.one_of(
    st.none(),
    iso_texts(),
    st.sampled_from(
        ["", "2026-01-01", "not a time", "2026-13-01T00:00:00Z", "0001-01-01T00:00:00+01:00"]
    ),
    st.integers(min_value=-(10**15), max_value=10**15),
    st.floats(),
    st.booleans(),
)
objects = st.one_of(
    st.none(),
    st.dictionaries(st.text(max_size=6), json_values, max_size=4),
    json_values,
)


def mostly(draw: st.DrawFn, usual: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> Any:
    """A value from ``usual`` nine times in ten, else from ``odd``: most generated messages
    are valid, so both paths are compared on what they accept as well as on what they refuse."""
    return draw(usual) if draw(st.integers(0, 9)) else draw(odd)


plain_ids = st.text(min_size=1, max_size=20)
objects_usual = st.dictionaries(st.text(max_size=6), json_values, max_size=4)


@st.composite
def messages(draw: st.DrawFn) -> Any:
    kind = mostly(
        draw,
        st.sampled_from(["identify", "track", "page", "screen", "group", "alias", "delete"]),
        st.one_of(st.sampled_from(["", "Track", "bogus"]), st.none(), st.integers()),
    )
    message: dict[str, Any] = {"type": kind}
    needed = {"alias": ["previousId", "userId"], "delete": ["userId"], "group": ["groupId"]}
    for field in ("messageId", "userId", "anonymousId", "previousId", "groupId"):
        wanted = field in needed.get(kind, []) or (
            field in ("userId", "anonymousId") and draw(st.booleans())
        )
        if wanted or draw(st.integers(0, 4)) == 0:
            message[field] = mostly(draw, plain_ids, ids)
    if kind == "track" or draw(st.integers(0, 4)) == 0:
        message["event"] = mostly(
            draw, st.text(min_size=1, max_size=10), st.one_of(st.just(""), st.none(), st.integers())
        )
    if draw(st.booleans()):
        message["name"] = mostly(draw, st.text(max_size=10), st.one_of(st.none(), st.integers()))
    for field in ("timestamp", "originalTimestamp", "sentAt"):
        if draw(st.booleans()):
            message[field] = mostly(draw, iso_texts(), timestamps)
    for field in ("properties", "traits", "context"):
        if draw(st.booleans()):
            message[field] = mostly(draw, objects_usual, objects)
    context = message.get("context")
    if isinstance(context, dict) and draw(st.booleans()):
        context["traits"] = mostly(draw, objects_usual, objects)
    extras = st.dictionaries(
        st.sampled_from(["integrations", "channel", "x"]), json_values, max_size=2
    )
    message.update(draw(extras))
    return mostly(draw, st.just(message), json_values)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    message=messages(),
    received=st.sampled_from([RECEIVED, RECEIVED.replace(tzinfo=UTC)]),
    max_bytes=st.sampled_from([120, 400, MAX_MESSAGE_BYTES]),
)
@example(message=track(timestamp="1970-01-01T00:00:00Z"), received=RECEIVED, max_bytes=MAX)
@example(message=track(timestamp="0001-01-01T00:30:00+01:00"), received=RECEIVED, max_bytes=MAX)
@example(message=track(sentAt="9999-12-31T23:30:00-01:00"), received=RECEIVED, max_bytes=MAX)
@example(message=track(userId="u" * 151), received=RECEIVED, max_bytes=MAX)
@example(message=track(anonymousId="𝄞" * 38), received=RECEIVED, max_bytes=MAX)
@example(
    message={"type": "identify", "userId": "u", "context": {"traits": ["x"]}},
    received=RECEIVED,
    max_bytes=MAX,
)
@example(message=track(properties={"n": 2**70}), received=RECEIVED, max_bytes=MAX)
@example(message=track(properties={"x": "a" * 200}), received=RECEIVED, max_bytes=200)
def test_quick_row_declines_or_agrees_with_the_full_check(
    message: Any, received: datetime, max_bytes: int
) -> None:
    expected = full_check(message, received, max_bytes)
    quick = quick_row(message, received_micros(received), max_bytes)
    assert quick is None or quick == expected
    if expected is None:
        with pytest.raises(InvalidMessage):
            journal_row(message, received, received_micros(received), max_bytes=max_bytes)
    else:
        assert (
            journal_row(message, received, received_micros(received), max_bytes=max_bytes)
            == expected
        )


SDK_MESSAGES = [
    {
        "type": "track",
        "userId": "user-1",
        "event": "Order Completed",
        "messageId": "3f1b0a4e-4b4f-4d0e-9a0e-1f2b3c4d5e6f",
        "timestamp": "2026-12-01T10:00:00.123456+00:00",
        "properties": {"total": 42.5, "items": [{"sku": "a"}]},
        "context": {"library": {"name": "analytics-python", "version": "2.3.3"}},
        "integrations": {},
    },
    {
        "type": "identify",
        "anonymousId": "anon-1",
        "traits": {"email": "ada@example.com", "plan": "pro"},
        "originalTimestamp": "2026-12-01T10:00:00Z",
        "sentAt": "2026-12-01T10:00:01Z",
    },
    {"type": "identify", "userId": "u2", "context": {"traits": {"name": "Ada"}}},
    {"type": "page", "userId": "u3", "name": "Pricing", "properties": {"path": "/pricing"}},
    {"type": "screen", "anonymousId": "a4", "name": "Home", "timestamp": "2026-12-01 10:00:00"},
    {"type": "group", "userId": "u5", "groupId": "acme", "traits": {"seats": 10}},
    {"type": "alias", "previousId": "anon-1", "userId": "user-1"},
    {"type": "delete", "userId": "u6"},
]


@pytest.mark.parametrize("message", SDK_MESSAGES, ids=lambda m: m["type"])
def test_quick_row_takes_what_sdks_send(message: dict[str, Any]) -> None:
    quick = quick_row(message, received_micros(RECEIVED), MAX_MESSAGE_BYTES)
    assert quick is not None
    assert quick == full_check(message, RECEIVED, MAX_MESSAGE_BYTES)
