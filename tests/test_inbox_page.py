"""The inbox page in a real headless Chromium, over messages a journey's in_app step stored
through a real pipeline run; served by a real `nudge serve`, and called across origins from
another page the way a customer's web app does."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime

import pytest
from playwright.sync_api import Browser, Page, expect

from nudge.core.dsl.spec import CHANNELS
from nudge.core.landing.writer import land_messages
from nudge.core.workspace import Workspace
from orchestration.stages import prepare_workspace, run_pipeline
from senders.capture import CapturingProvider
from senders.channels.in_app import InboxProvider
from tests.conftest import CollectorProcess, running_collector
from tests.http_standin import Reply, StandIn, standin
from tests.test_inbox_api import INBOX_ENV, user_hash

pytestmark = pytest.mark.slow

CONTENT = """\
segments:
  - {name: pro, condition: {attribute: {name: plan, eq: pro}}}
templates:
  - {name: tip, channel: in_app, title: "Tip for {{ user.first_name }}", body: "Try the CLI"}
  - {name: news, channel: in_app, title: "What's new", body: "Dark mode is here"}
journeys:
  - name: onboarding
    trigger: {segment_entered: pro}
    steps:
      - {id: tip, send: {channel: in_app, template: tip}}
      - {id: news, send: {channel: in_app, template: news}}
"""
APP_PAGE = "<!doctype html><title>Customer app</title><p>app</p>"


def stored(workspace: Workspace, user_id: str) -> dict[str, tuple[str, str | None, str | None]]:
    """``title: (delivery_id, read_at, dismissed_at)`` of the user's stored messages."""
    with sqlite3.connect(workspace.inbox_path) as con:
        rows = con.execute(
            """select content ->> '$.title', delivery_id, read_at, dismissed_at
               from inbox_messages where user_id = ?""",
            (user_id,),
        ).fetchall()
    return {title: (d, r, x) for title, d, r, x in rows}


@pytest.fixture
def workspace(tmp_path) -> Workspace:  # type: ignore[no-untyped-def]
    content = tmp_path / "content"
    content.mkdir()
    (content / "inbox.yml").write_text(CONTENT)
    workspace = Workspace(home=tmp_path / "home", content_dir=content).ensure()
    land_messages(
        workspace.events_landing_dir,
        [
            {"type": "identify", "userId": user, "messageId": f"m-{user}",
             "timestamp": "2026-11-01T10:00:00Z", "traits": {"plan": "pro", "first_name": name}}
            for user, name in (("ada", "Ada"), ("bob", "Bob"))
        ],
    )  # fmt: skip
    content_spec, project = prepare_workspace(workspace)
    providers = {channel: CapturingProvider(channel) for channel in CHANNELS}
    providers["in_app"] = InboxProvider(workspace.inbox_path)
    run_pipeline(workspace, content_spec, project, providers, as_of=datetime(2026, 11, 1, 12))
    assert set(stored(workspace, "ada")) == {"Tip for Ada", "What's new"}
    return workspace


@pytest.fixture
def app_site() -> Iterator[StandIn]:
    """Where the customer's web app is served from: another origin than the collector."""
    with standin(lambda _: Reply(200, APP_PAGE, {"Content-Type": "text/html"})) as site:
        yield site


@pytest.fixture
def collector(workspace: Workspace, app_site: StandIn) -> Iterator[CollectorProcess]:
    env = {**INBOX_ENV, "NUDGE_INBOX_ORIGINS": app_site.url}
    with running_collector(workspace.home, workspace.content_dir, env) as server:
        yield server


def inbox_page(browser: Browser, collector: CollectorProcess, user_id: str) -> Page:
    page = browser.new_page()
    answer = page.goto(f"{collector.url}/inbox/{user_id}?user_hash={user_hash(user_id)}")
    assert answer is not None and answer.status == 200
    return page


def test_the_page_lists_messages_and_its_buttons_change_the_store(
    workspace: Workspace, collector: CollectorProcess, browser: Browser
) -> None:
    page = inbox_page(browser, collector, "ada")
    messages = page.locator("#messages li")
    expect(messages).to_have_count(2)
    expect(page.locator("#messages li.unread")).to_have_count(2)
    expect(page.locator("#unread-count")).to_have_text("2")
    expect(page.locator("#messages .title")).to_have_text(["What's new", "Tip for Ada"])
    expect(page.locator("#messages .body")).to_have_text(["Dark mode is here", "Try the CLI"])

    tip, _, _ = stored(workspace, "ada")["Tip for Ada"]
    page.locator(f'li[data-delivery-id="{tip}"] button.read').click()
    expect(page.locator(f'li[data-delivery-id="{tip}"]')).not_to_have_class("message unread")
    expect(page.locator("#unread-count")).to_have_text("1")
    assert stored(workspace, "ada")["Tip for Ada"][1] is not None
    assert stored(workspace, "ada")["What's new"][1] is None

    news, _, _ = stored(workspace, "ada")["What's new"]
    page.locator(f'li[data-delivery-id="{news}"] button.dismiss').click()
    expect(messages).to_have_count(1)
    expect(page.locator("#unread-count")).to_have_text("0")
    assert stored(workspace, "ada")["What's new"][2] is not None
    assert all(read is None for _, read, _ in stored(workspace, "bob").values())

    page.reload()  # what was done stays done
    expect(page.locator("#messages .title")).to_have_text(["Tip for Ada"])


def test_mark_all_read_and_each_person_sees_only_their_own(
    workspace: Workspace, collector: CollectorProcess, browser: Browser
) -> None:
    bob = inbox_page(browser, collector, "bob")
    expect(bob.locator("#messages .title")).to_have_text(["What's new", "Tip for Bob"])
    bob.click("#read-all")
    expect(bob.locator("#unread-count")).to_have_text("0")
    expect(bob.locator("#messages li.unread")).to_have_count(0)
    assert all(read for _, read, _ in stored(workspace, "bob").values())
    assert all(read is None for _, read, _ in stored(workspace, "ada").values())


def test_a_wrong_or_missing_hash_gets_a_401_page(
    collector: CollectorProcess, browser: Browser
) -> None:
    page = browser.new_page()
    for query in (f"?user_hash={user_hash('bob')}", "?user_hash=00", ""):
        answer = page.goto(f"{collector.url}/inbox/ada{query}")
        assert answer is not None and answer.status == 401, query
        expect(page.locator("h1")).to_have_text("This inbox cannot be shown")
        assert "Tip for Ada" not in page.content()
    expect(page.locator("#reason")).to_contain_text("missing user hash")


FETCH = """async ([url, hash]) => {
  try {
    const answer = await fetch(url, {method: "POST", headers: {"X-Nudge-User-Hash": hash}});
    return [answer.status, await answer.json()];
  } catch (failure) {
    return ["blocked", String(failure)];
  }
}"""


def test_a_configured_origin_calls_the_api_from_its_own_page(
    workspace: Workspace, collector: CollectorProcess, app_site: StandIn, browser: Browser
) -> None:
    page = browser.new_page()
    page.goto(app_site.url)
    read_all = f"{collector.url}/inbox/ada/messages/read"
    assert page.evaluate(FETCH, [read_all, user_hash("ada")]) == [200, {"read": 2, "unread": 0}]
    status, body = page.evaluate(FETCH, [read_all, user_hash("bob")])
    assert [status, body] == [401, {"error": "the user hash does not match user 'ada'"}]
    assert all(read is None for _, read, _ in stored(workspace, "bob").values())

    with standin(lambda _: Reply(200, APP_PAGE, {"Content-Type": "text/html"})) as elsewhere:
        page.goto(elsewhere.url)  # an origin not in NUDGE_INBOX_ORIGINS
        status, _ = page.evaluate(FETCH, [f"{collector.url}/inbox/bob/messages/read",
                                          user_hash("bob")])  # fmt: skip
    assert status == "blocked"
