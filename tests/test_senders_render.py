"""Template rendering (sandbox, escaping, strict variables) and signed unsubscribe links."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from nudge.core.dsl.spec import Layout, Origin, Template
from senders.templates import RenderContext, RenderError, TemplateRenderer, html_to_text
from senders.unsubscribe import InvalidToken, sign_token, unsubscribe_url, verify_token

ORIGIN = Origin("templates.yml", "templates")


def render(fields: dict, *, channel: str = "email", traits: dict | None = None, event=None):
    renderer = TemplateRenderer([Template("t", channel, ORIGIN, fields)])
    context = RenderContext(
        user_id="u1",
        traits=traits if traits is not None else {"first_name": "Ada"},
        event=event,
        journey="onboarding",
        step="welcome",
        delivery_id="d-1",
        unsubscribe_url="https://nudge.example/u/tok?a=1&b=2",
    )
    return renderer.render("t", context)


def test_html_is_autoescaped_subject_and_text_are_not():
    traits = {"first_name": "<b>Tom & Jerry</b>"}
    out = render(
        {
            "subject": "Hi {{ user.first_name }}",
            "text": "Hi {{ user.first_name }}",
            "html": "<p>Hi {{ user.first_name }}</p><a href='{{ unsubscribe_url }}'>x</a>",
        },
        traits=traits,
    )
    assert out["subject"] == "Hi <b>Tom & Jerry</b>"
    assert out["text"] == "Hi <b>Tom & Jerry</b>"
    assert out["html"] == (
        "<p>Hi &lt;b&gt;Tom &amp; Jerry&lt;/b&gt;</p>"
        "<a href='https://nudge.example/u/tok?a=1&amp;b=2'>x</a>"
    )


def test_sms_body_is_not_escaped():
    out = render({"body": "{{ user.first_name }} & co"}, channel="sms")
    assert out == {"body": "Ada & co"}


def test_slack_values_cannot_mention_or_link_but_the_template_can():
    traits = {"email": "<!channel> <https://evil.example/login|Admin: sign in> a@b.c & co"}
    out = render(
        {
            "text": "<!here> {{ user.email }} upgraded, see <https://app.example/u/{{ user.id }}|it>",
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "{{ user.email }}"}}],
            "url": "https://hooks.example/{{ user.id }}",
        },
        channel="slack",
        traits=traits,
    )
    shown = "&lt;!channel&gt; &lt;https://evil.example/login|Admin: sign in&gt; a@b.c &amp; co"
    assert out["text"] == f"<!here> {shown} upgraded, see <https://app.example/u/u1|it>"
    assert out["blocks"][0]["text"]["text"] == shown
    assert out["url"] == "https://hooks.example/u1"


def test_a_slack_value_that_is_undefined_is_still_an_error():
    with pytest.raises(RenderError, match=r"undefined variable 'user\.nope'"):
        render({"text": "{{ user.nope }}"}, channel="slack")


def test_context_has_user_id_event_journey_step_and_delivery_id():
    out = render(
        {"body": "{{ user.id }} {{ event.plan }} {{ journey }}/{{ step }} {{ delivery_id }}"},
        channel="sms",
        event={"plan": "pro"},
    )
    assert out["body"] == "u1 pro onboarding/welcome d-1"


def test_undefined_variable_is_an_error_naming_template_field_and_variable():
    with pytest.raises(RenderError) as caught:
        render({"subject": "Hi {{ user.last_name }}"})
    assert caught.value.variable == "user.last_name"
    message = str(caught.value)
    assert "'t'" in message and "'subject'" in message and "'user.last_name'" in message


def test_nested_undefined_and_unknown_top_level_names():
    with pytest.raises(RenderError, match=r"'event\.cart'"):
        render({"body": "{{ event.cart.total }}"}, channel="sms", event={})
    with pytest.raises(RenderError, match=r"'coupon'"):
        render({"body": "{{ coupon }}"}, channel="sms")


def test_default_filter_covers_missing_values():
    out = render({"subject": "Hi {{ user.nickname | default('there') }}"})
    assert out["subject"] == "Hi there"


def test_sandbox_blocks_attribute_access():
    with pytest.raises(RenderError, match="sandbox"):
        render({"subject": "{{ ''.__class__.__mro__ }}"})
    with pytest.raises(RenderError, match="sandbox"):
        render({"subject": "{{ user.__class__ }}"})


def test_syntax_error_names_the_field_and_line():
    with pytest.raises(RenderError, match=r"'html'.*line 2"):
        render({"html": "<p>\n{{ user.first_name </p>"})


def test_nested_fields_are_rendered():
    out = render(
        {"url": "https://hooks.example/{{ user.id }}", "json": {"id": "{{ user.id }}", "n": 3}},
        channel="webhook",
    )
    assert out == {"url": "https://hooks.example/u1", "json": {"id": "u1", "n": 3}}


def test_preferences_link_is_there_wherever_a_template_names_it(monkeypatch):
    # The link is signed only for templates naming it: a nested field or a layout still gets it.
    monkeypatch.setenv("NUDGE_PUBLIC_URL", "https://nudge.example")
    out = render({"url": "https://hooks.example", "json": {"p": ["{{ preferences_url }}"]}},
                 channel="webhook")  # fmt: skip
    assert out["json"]["p"][0].startswith("https://nudge.example/preferences/")
    assert verify_token(out["json"]["p"][0].rsplit("/", 1)[1]) == ("u1", None, None)
    layout = Layout(
        "frame", ORIGIN, "<div>{{ content }}</div><a href='{{ preferences_url }}'>P</a>"
    )
    renderer = TemplateRenderer(
        [Template("t", "email", ORIGIN, {"subject": "S", "html": "<p>Hi</p>"}, layout="frame")],
        [layout],
    )
    context = RenderContext("u1", {}, None, "j", "s", "d-1", "https://nudge.example/u/t")
    assert "https://nudge.example/preferences/" in renderer.render("t", context)["html"]


def test_text_part_is_derived_from_html_when_absent():
    out = render(
        {
            "subject": "s",
            "html": "<html><head><style>p {color: red}</style></head><body>"
            "<h1>Welcome</h1><p>Hi {{ user.first_name }},<br>try <a href='https://x.example/a'>"
            "this</a>.</p><ul><li>one</li><li>two</li></ul></body></html>",
        }
    )
    assert out["text"] == "Welcome\n\nHi Ada,\ntry this (https://x.example/a).\n\n- one\n- two"


def test_html_to_text_unescapes_entities():
    assert html_to_text("<p>Tom &amp; Jerry &lt;3</p>") == "Tom & Jerry <3"


def test_unknown_template_is_a_render_error():
    renderer = TemplateRenderer([])
    with pytest.raises(RenderError, match="no template"):
        renderer.template("missing")


def test_a_token_is_the_compact_json_and_its_hmac_sha256(monkeypatch):
    # Links already sent must keep verifying: the token's bytes are fixed by this format.
    monkeypatch.setenv("NUDGE_SECRET_KEY", "s3cret")
    payload = b'{"u":"user-1","t":"news \\u00e9","c":"sms"}'
    signature = hmac.new(b"s3cret", payload, hashlib.sha256).digest()
    b64 = [base64.urlsafe_b64encode(part).rstrip(b"=").decode() for part in (payload, signature)]
    assert sign_token("user-1", "news \u00e9", "sms") == ".".join(b64)


def test_unsubscribe_links_are_signed(monkeypatch):
    monkeypatch.setenv("NUDGE_SECRET_KEY", "s3cret")
    monkeypatch.setenv("NUDGE_PUBLIC_URL", "https://nudge.example/")
    url = unsubscribe_url("user-1", "newsletter")
    assert url.startswith("https://nudge.example/u/")
    token = url.rsplit("/", 1)[1]
    assert verify_token(token) == ("user-1", "newsletter", None)
    with_channel = unsubscribe_url("user-1", "newsletter", "sms").rsplit("/", 1)[1]
    assert verify_token(with_channel) == ("user-1", "newsletter", "sms")
    assert verify_token(unsubscribe_url("user-2").rsplit("/", 1)[1]) == ("user-2", None, None)

    signature = token.split(".")[1]
    forged_payload = unsubscribe_url("someone-else", "newsletter").rsplit("/", 1)[1].split(".")[0]
    with pytest.raises(InvalidToken):
        verify_token(f"{forged_payload}.{signature}")
    with pytest.raises(InvalidToken):
        verify_token("not-a-token")
    monkeypatch.setenv("NUDGE_SECRET_KEY", "another")
    with pytest.raises(InvalidToken):
        verify_token(token)


BIG = "{% set big = 'a' * 1000000 %}"
BOUNDS = {
    "repeat": ("{{ 'a' * 10**10 }}", "'*' would build 10,000,000,000 characters or items"),
    "repeat_in_a_loop": (
        "{% for i in range(100) %}{{ 'a' * 10**7 }}{% endfor %}",
        "'*' would build 10,000,000 characters or items; the limit is 1,000,000",
    ),
    "output": (
        "{% for i in range(100) %}{{ user.long }}{% endfor %}",
        "the rendered text would be 10,000,000 characters; the limit is 1,000,000",
    ),
    "nested_loops": (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "rendering takes more than 10,000,000 steps",
    ),
    "concat_growth": (
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
        "{% endfor %}{{ ns.s }}",
        "a value would build 1,048,576 characters or items; the limit is 1,000,000",
    ),
    "integer_growth": (
        "{% set ns = namespace(n=10) %}{% for i in range(64) %}{% set ns.n = ns.n * ns.n %}"
        "{% endfor %}{{ ns.n }}",
        "'*' would make an integer of more than 16,384 bits",
    ),
    "printf_width": ("{{ '%10000000000s' % 'a' }}", "a '%' width would build 10,000,000,000"),
    "format_width": ("{{ '{:>10000000000}'.format('a') }}", "a format width would build"),
    "padding_method": ("{{ 'a'.ljust(10**10) }}", "'ljust' would build 10,000,000,000"),
    "replace_filter": (
        BIG + "{{ big|replace('a', 'bb') }}",
        "'replace' would build 2,000,000 characters or items",
    ),
    "search_in_a_loop": (
        BIG + "{% for i in range(100000) %}{{ 'b' in big }}{% endfor %}",
        "rendering takes more than 10,000,000 steps",
    ),
    "slice_in_a_loop": (
        BIG + "{% for i in range(100000) %}{{ big[1:]|length }}{% endfor %}",
        "rendering takes more than 10,000,000 steps",
    ),
}


@pytest.mark.parametrize(("source", "bound"), BOUNDS.values(), ids=BOUNDS.keys())
def test_rendering_is_bounded_in_size_and_work(source: str, bound: str):
    with pytest.raises(RenderError) as refused:
        render({"body": source}, channel="sms", traits={"long": "a" * 100_000})
    assert str(refused.value).startswith("render error in template 't', field 'body': refused: ")
    assert bound in str(refused.value)


def test_bounded_rendering_keeps_ordinary_templates_working():
    source = (
        "{% for item in user['items'] %}{{ loop.index }}:{{ item|upper }} {% endfor %}"
        "{{ '%05d'|format(42) }} {{ '{:,}'.format(1234567890) }} {{ [1, 2]|sum }} "
        "{{ 'a' in 'abc' }} {{ ('ab' * 3)[1:3] }} {{ 2 ** 10 }} {{ 'x' ~ user['items'][0] }}"
    )
    out = render({"body": source}, channel="sms", traits={"items": ["a", "b"]})
    assert out["body"] == "1:A 2:B 00042 1,234,567,890 3 True ba 1024 xa"
