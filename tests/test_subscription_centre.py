"""The subscription centre served over HTTP, clicked through in a real headless Chromium.

A person's choices land as identify calls; the next pipeline run puts them in ``dim_users``, the
preference page then shows them, and the senders honour them channel by channel.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
import requests
from playwright.sync_api import Browser

from collector.subscription_centre import subscription_app
from nudge.core.dsl.spec import CHANNELS
from nudge.core.landing.writer import land_messages
from nudge.core.workspace import Workspace
from orchestration.stages import prepare_workspace, run_pipeline
from senders.capture import CapturingProvider
from senders.unsubscribe import preferences_url, sign_token
from tests.conftest import holding_warehouse

pytestmark = pytest.mark.slow

# product_updates is sent by email and sms (the page offers those two); the newsletter declares
# its one channel.
CONTENT = """\
topics:
  - name: product_updates
    description: News about features you use.
  - {name: newsletter, default: unsubscribed, description: A monthly digest., channels: [email]}
segments:
  - {name: launch_audience, condition: {attribute: {name: launch, eq: true}}}
templates:
  - {name: launch_email, channel: email, subject: Something new, html: "<p>New</p>"}
  - {name: launch_sms, channel: sms, body: Something new}
journeys:
  - name: launch
    trigger: {segment_entered: launch_audience}
    steps:
      - {id: mail, send: {channel: email, template: launch_email, topic: product_updates}}
      - {id: text, send: {channel: sms, template: launch_sms, topic: product_updates}}
"""


def _landing_files(workspace: Workspace) -> list[Path]:
    return sorted(workspace.events_landing_dir.rglob("*.parquet"))


def _run(workspace: Workspace, as_of: datetime) -> dict[str, CapturingProvider]:
    content, project = prepare_workspace(workspace)
    providers = {channel: CapturingProvider(channel) for channel in CHANNELS}
    run_pipeline(workspace, content, project, providers, as_of=as_of)
    return providers


def _after_now() -> datetime:
    """A run after the choices: they are landed at the real clock's time."""
    return datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=1)


def _traits(workspace: Workspace, user_id: str) -> dict:
    with duckdb.connect(str(workspace.warehouse_path), read_only=True) as con:
        (traits,) = con.execute(
            "select traits from marts.dim_users where user_id = ?", [user_id]
        ).fetchone()
    return json.loads(traits)


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    content = tmp_path / "content"
    content.mkdir()
    (content / "topics.yml").write_text(CONTENT)
    workspace = Workspace(home=tmp_path / "home", content_dir=content).ensure()
    land_messages(
        workspace.events_landing_dir,
        [
            {
                "type": "identify",
                "userId": "u1",
                "messageId": "m1",
                "timestamp": "2026-11-01T10:00:00Z",
                "traits": {
                    "email": "u1@example.com",
                    "phone": "+15550100",
                    "cio_subscription_preferences": {"topics": {"newsletter": True}},
                },
            }
        ],
    )
    _run(workspace, datetime(2026, 11, 1, 12))
    return workspace


@pytest.fixture
def server(workspace: Workspace, asgi_server) -> str:
    return asgi_server(subscription_app(workspace))


def test_preferences_page_saves_per_channel_choices_and_the_next_run_honours_them(
    workspace: Workspace, server: str, browser: Browser
) -> None:
    page = browser.new_page()
    page.goto(preferences_url("u1"))
    # A checkbox per channel the topic's sends use, or the topic declares; checked from the
    # topic's default (subscribed) and the person's own choice (newsletter: true).
    boxes = page.locator("input[type=checkbox]").evaluate_all("els => els.map(e => e.id)")
    assert boxes == [
        "topic-product_updates-email",
        "topic-product_updates-sms",
        "topic-newsletter-email",
        "unsubscribe-all",
    ]
    assert page.is_checked("#topic-product_updates-email")
    assert page.is_checked("#topic-product_updates-sms")
    assert page.is_checked("#topic-newsletter-email")
    assert not page.is_checked("#unsubscribe-all")
    assert "A monthly digest." in page.content()

    before = _landing_files(workspace)
    page.uncheck("#topic-product_updates-sms")
    page.click("#save")
    assert page.is_visible("#saved")
    assert page.is_checked("#topic-product_updates-email")
    assert not page.is_checked("#topic-product_updates-sms")
    assert len(_landing_files(workspace)) == len(before) + 1

    # The launch journey then sends product updates by email and by sms: only the email goes.
    land_messages(
        workspace.events_landing_dir,
        [{"type": "identify", "userId": "u1", "messageId": "m2", "traits": {"launch": True}}],
    )
    providers = _run(workspace, _after_now())
    preferences = _traits(workspace, "u1")["cio_subscription_preferences"]["topics"]
    assert preferences == {"product_updates": {"email": True, "sms": False}, "newsletter": True}
    assert [m.address for m in providers["email"].messages] == ["u1@example.com"]
    assert providers["sms"].messages == []
    with duckdb.connect(str(workspace.warehouse_path), read_only=True) as con:
        ledger = con.execute(
            "select step, status, reason from nudge.delivery_ledger order by step"
        ).fetchall()
    assert ledger == [
        ("mail", "sent", None),
        ("text", "skipped", "topic unsubscribed: product_updates on sms"),
    ]
    page.goto(preferences_url("u1"))
    assert page.is_checked("#topic-product_updates-email")
    assert not page.is_checked("#topic-product_updates-sms")
    assert page.is_checked("#topic-newsletter-email")


def test_the_same_choice_on_every_channel_saves_the_plain_topic_flag(
    workspace: Workspace, server: str, browser: Browser
) -> None:
    # A choice the page does not show (a topic no longer declared) survives the save.
    land_messages(
        workspace.events_landing_dir,
        [
            {
                "type": "identify",
                "userId": "u1",
                "messageId": "m2",
                "traits": {
                    "cio_subscription_preferences": {
                        "topics": {"newsletter": True, "retired": False}
                    }
                },
            }
        ],
    )
    _run(workspace, _after_now())
    page = browser.new_page()
    page.goto(preferences_url("u1"))
    page.uncheck("#topic-product_updates-email")
    page.uncheck("#topic-product_updates-sms")
    page.click("#save")
    assert page.is_visible("#saved")
    _run(workspace, _after_now())
    preferences = _traits(workspace, "u1")["cio_subscription_preferences"]["topics"]
    assert preferences == {"product_updates": False, "newsletter": True, "retired": False}


def test_unsubscribe_page_asks_first_then_unsubscribes_from_the_topic(
    workspace: Workspace, server: str, browser: Browser
) -> None:
    # A choice on another topic, set since the first run, survives the unsubscribe (an identify
    # replaces the whole preference trait, so the centre lands it with the others kept).
    other = {"product_updates": {"email": True, "sms": False}, "newsletter": True}
    land_messages(
        workspace.events_landing_dir,
        [
            {
                "type": "identify",
                "userId": "u1",
                "messageId": "m2",
                "traits": {"cio_subscription_preferences": {"topics": other}},
            }
        ],
    )
    _run(workspace, _after_now())
    link = f"{server}/u/{sign_token('u1', 'newsletter')}"
    before = _landing_files(workspace)
    page = browser.new_page()
    page.goto(link)
    # Showing the page (what a link scanner does) changes nothing.
    assert _landing_files(workspace) == before
    page.click("#unsubscribe")
    assert "newsletter" in page.inner_text("#done")

    _run(workspace, _after_now())
    traits = _traits(workspace, "u1")
    assert traits["cio_subscription_preferences"]["topics"] == {
        "product_updates": {"email": True, "sms": False},
        "newsletter": False,
    }
    assert traits.get("unsubscribed") is not True


def test_unsubscribe_page_offers_to_stop_the_topic_on_the_links_channel_only(
    workspace: Workspace, server: str, browser: Browser
) -> None:
    page = browser.new_page()
    # The newsletter goes by email only: nothing to keep on another channel, no second button.
    page.goto(f"{server}/u/{sign_token('u1', 'newsletter', 'email')}")
    assert page.locator("#unsubscribe-channel").count() == 0

    page.goto(f"{server}/u/{sign_token('u1', 'product_updates', 'sms')}")
    page.click("#unsubscribe-channel")
    assert (
        page.inner_text("#done")
        == "You will no longer receive messages about product_updates by SMS."
    )

    _run(workspace, _after_now())
    preferences = _traits(workspace, "u1")["cio_subscription_preferences"]["topics"]
    assert preferences == {"product_updates": {"email": True, "sms": False}, "newsletter": True}


def test_one_click_post_unsubscribes_from_everything(workspace: Workspace, server: str) -> None:
    # What a mail client sends from its own unsubscribe button (RFC 8058).
    answer = requests.post(
        f"{server}/u/{sign_token('u1', None)}",
        data={"List-Unsubscribe": "One-Click"},
        timeout=10,
    )
    assert answer.status_code == 200
    _run(workspace, _after_now())
    with duckdb.connect(str(workspace.warehouse_path), read_only=True) as con:
        (unsubscribed,) = con.execute(
            "select unsubscribed from marts.dim_users where user_id = 'u1'"
        ).fetchone()
    assert unsubscribed is True
    shown = requests.get(preferences_url("u1"), timeout=10).text
    assert 'id="unsubscribe-all" checked' in shown


def test_while_a_run_holds_the_warehouse_topic_choices_wait_and_change_nothing(
    workspace: Workspace, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A topic unsubscribe and a save merge with the stored preferences, so they must read them:
    # "try again" (503), nothing landed. The global unsubscribe needs no reading and still lands.
    monkeypatch.setenv("NUDGE_WAREHOUSE_WAIT_SECONDS", "0.5")
    with holding_warehouse(workspace.warehouse_path):
        before = _landing_files(workspace)
        topic = requests.post(f"{server}/u/{sign_token('u1', 'newsletter')}", timeout=30)
        save = requests.post(preferences_url("u1"), data={"unsubscribed": "on"}, timeout=30)
        for answer in (topic, save):
            assert (answer.status_code, answer.headers.get("Retry-After")) == (503, "30")
            assert "Nothing was changed." in answer.text
        assert _landing_files(workspace) == before
        everything = requests.post(f"{server}/u/{sign_token('u1', None)}", timeout=30)
        assert everything.status_code == 200
        assert len(_landing_files(workspace)) == len(before) + 1


@pytest.mark.parametrize("path", ["/u/", "/preferences/"])
def test_a_changed_token_gets_a_page_and_changes_nothing(
    workspace: Workspace, server: str, path: str
) -> None:
    token = sign_token("u1", None)
    forged = sign_token("u2", None).split(".")[0] + "." + token.split(".")[1]
    before = _landing_files(workspace)
    for method in ("get", "post"):
        for bad in (forged, "not-a-token", token[:-3]):
            answer = requests.request(method, f"{server}{path}{bad}", timeout=10)
            assert answer.status_code == 400, (method, bad)
            assert "This link is not valid" in answer.text
    assert _landing_files(workspace) == before
