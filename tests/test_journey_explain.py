"""nudge explain --journey: where a user is, how they got there, what happens next, or why not."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from journeys.explain import explain_journey
from nudge.cli.main import main
from nudge.core.landing.writer import land_messages
from nudge.core.segments.explain import ExplainError
from nudge.core.workspace import Workspace
from nudge.devtools.smtp_sink import SmtpSink
from orchestration.stages import prepare_workspace, run_pipeline
from senders.capture import CapturingProvider
from senders.email import SmtpEmailProvider, SmtpSettings

pytestmark = pytest.mark.slow

START = datetime(2026, 3, 2, 9, 0)  # a Monday
CONTENT = """
segments:
  - name: new_signups
    condition: {performed: {event: signed_up, within: 7d}}
templates:
  - {name: welcome_email, channel: email, subject: "Welcome", html: "<p>Hi</p>"}
  - {name: tips_email, channel: email, subject: "Tips", html: "<p>Tips</p>"}
journeys:
  - name: onboarding
    trigger: {segment_entered: new_signups}
    entry_filter: {attribute: {name: plan, eq: free}}
    exit_when: {attribute: {name: closed, eq: true}}
    steps:
      - {id: welcome, send: {channel: email, template: welcome_email}}
      - {id: pause, wait: 2d}
      - {id: morning, window: {days: [mon, tue, wed, thu, fri], from: "09:00", to: "10:00",
                             timezone_attribute: timezone}}
      - {id: tips, send: {channel: email, template: tips_email}}
"""


def identify(user: str, at: datetime, **traits: object) -> dict:
    return {"type": "identify", "userId": user, "timestamp": at.isoformat() + "Z",
            "traits": {"email": f"{user}@example.com", **traits}}  # fmt: skip


def signup(user: str, at: datetime, **traits: object) -> list[dict]:
    track = {"type": "track", "userId": user, "event": "signed_up",
             "timestamp": at.isoformat() + "Z"}  # fmt: skip
    return [identify(user, at, **traits), track]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, object]:
    tmp = tmp_path_factory.mktemp("explain")
    (tmp / "content").mkdir()
    (tmp / "content" / "definitions.yml").write_text(CONTENT)
    workspace = Workspace(home=tmp / "home", content_dir=tmp / "content")
    content, project = prepare_workspace(workspace)
    land_messages(
        workspace.events_landing_dir,
        [
            *signup("ada", START, plan="free", timezone="Europe/Berlin"),
            *signup("cy", START, plan="pro"),
            identify("bob", START, plan="free"),
            *signup("dee", START, plan="free"),
        ],
    )
    email = {"email": CapturingProvider("email")}
    run_pipeline(workspace, content, project, email, as_of=START + timedelta(hours=1))
    land_messages(
        workspace.events_landing_dir, [identify("dee", START + timedelta(hours=2), closed=True)]
    )
    # Wednesday 12:00 Berlin: the wait is over, the morning window has closed.
    run_pipeline(workspace, content, project, email, as_of=START + timedelta(days=2, hours=2))
    return workspace, content


def explain(workspace, user: str) -> str:
    home, content = workspace
    return explain_journey(home, content, user_id=user, journey="onboarding")


def test_active_user_at_a_window_sees_history_messages_and_next_opening(workspace):
    text = explain(workspace, "ada")
    assert "at step morning (window)" in text
    assert "started 2026-03-02 10:00:00 by entering segment new_signups" in text
    assert "entered the journey at step welcome" in text
    assert "step welcome queued email template welcome_email: sent; moved on to pause" in text
    assert "step pause: its wait was over; moved on to morning" in text
    assert "step welcome: email template welcome_email queued 2026-03-02 10:00:00: sent" in text
    # Next opening: Thursday 09:00 in Berlin = 08:00 UTC.
    assert "next opening 2026-03-05T08:00:00" in text
    assert "= 2026-03-05 09:00 Europe/Berlin" in text
    assert "then: step tips (send)" in text


def test_users_not_in_the_journey_get_the_reason(workspace):
    assert "never entered" in explain(workspace, "bob")
    assert "the user is not in new_signups" in explain(workspace, "bob")
    cy = explain(workspace, "cy")
    assert "the user is in new_signups" in cy
    assert 'entry_filter (trait plan is "free") does not hold: filtered out' in cy
    dee = explain(workspace, "dee")
    assert "exited at step pause" in dee
    assert "reason: exit_when, trait closed is true, held" in dee
    assert "reentry: never" in dee
    with pytest.raises(ExplainError, match="user 'nobody' is not a known user"):
        explain(workspace, "nobody")


def test_unknown_journey_is_a_clear_error(workspace):
    home, content = workspace
    with pytest.raises(ExplainError, match=r"unknown journey 'onboardin'.*onboarding"):
        explain_journey(home, content, user_id="ada", journey="onboardin")


def test_cli_an_unknown_user_is_a_sentence_and_not_an_explanation(workspace, capsys, monkeypatch):
    """`nudge explain` with an id the warehouse does not know is the user's mistake, for a journey
    as for a segment: one sentence on stderr and exit 2, not an explanation and exit 0."""
    home, _ = workspace
    for name in home.env():  # main points the environment at the workspace: put it back after
        monkeypatch.delenv(name, raising=False)
    args = ["--home", str(home.home), "--content", str(home.content_dir), "explain"]
    assert main([*args, "--user", "nosuch", "--journey", "onboarding"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "user 'nosuch' is not a known user" in err and "`nudge profile`" in err
    assert "Traceback" not in err
    assert main([*args, "--user", "nosuch", "--segment", "new_signups"]) == 2
    assert "user 'nosuch' is not a known user" in capsys.readouterr().err
    # A known user who never entered is still explained, and a mistaken journey comes first.
    assert main([*args, "--user", "bob", "--journey", "onboarding"]) == 0
    assert "never entered" in capsys.readouterr().out
    assert main([*args, "--user", "nosuch", "--journey", "onboardin"]) == 2
    assert "unknown journey 'onboardin'" in capsys.readouterr().err


CART_CONTENT = """
templates:
  - {name: finish, channel: email, subject: "Your cart", html: "<p>Finish</p>"}
journeys:
  - name: cart_recovery
    trigger: {event: {name: checkout_started}}
    reentry: always
    exit_when:
      performed: {event: order_completed, since: trigger, where: [{property: cart_id, eq: {trigger: cart_id}}]}
    steps:
      - {id: hold, wait: 1h}
      - id: came_back
        wait_until:
          condition: {performed: {event: cart_viewed, since: step}}
          timeout: 1d
      - {id: nudge, send: {channel: email, template: finish}}
"""


def track(user: str, event: str, at: datetime, message_id: str, **properties: object) -> dict:
    return {"type": "track", "userId": user, "event": event, "messageId": message_id,
            "timestamp": at.isoformat() + "Z", "properties": properties}  # fmt: skip


def test_scoped_conditions_show_the_trigger_values_and_the_events_counted(tmp_path):
    (tmp_path / "content").mkdir()
    (tmp_path / "content" / "definitions.yml").write_text(CART_CONTENT)
    home = Workspace(home=tmp_path / "home", content_dir=tmp_path / "content")
    content, project = prepare_workspace(home)
    minute = timedelta(minutes=1)
    land_messages(
        home.events_landing_dir,
        [
            identify("ann", START),
            identify("ben", START),
            track("ann", "checkout_started", START + minute, "ann-checkout", cart_id="c1"),
            track("ann", "order_completed", START + 2 * minute, "ann-order-other", cart_id="c9"),
            track("ben", "checkout_started", START + minute, "ben-checkout", cart_id="c2"),
            track("ben", "order_completed", START + 2 * minute, "ben-order", cart_id="c2"),
        ],
    )
    email = {"email": CapturingProvider("email")}
    run_pipeline(home, content, project, email, as_of=START + 5 * minute)

    ann = explain_journey(home, content, user_id="ann", journey="cart_recovery")
    assert "exit_when: does not hold" in ann
    assert "strictly after the trigger (2026-03-02 09:01:00)" in ann
    assert 'cart_id eq "c1" ({trigger: cart_id})' in ann
    assert "counted: 0 events" in ann
    # A step's scoped condition is shown only at that step (its `since: step` is that step's).
    assert "wait_until" not in ann.split("history:")[0]

    ben = explain_journey(home, content, user_id="ben", journey="cart_recovery")
    assert "reason: exit_when" in ben
    assert "exit_when: holds" in ben
    assert 'cart_id eq "c2" ({trigger: cart_id})' in ben
    assert "counted: 1 event" in ben and "ben-order" in ben

    # ann viewed her cart before reaching came_back: `since: step` does not count that view.
    land_messages(
        home.events_landing_dir, [track("ann", "cart_viewed", START + 30 * minute, "ann-view")]
    )
    run_pipeline(home, content, project, email, as_of=START + 70 * minute)
    ann = explain_journey(home, content, user_id="ann", journey="cart_recovery")
    assert "at step came_back (wait_until)" in ann
    assert "steps[1].wait_until.condition: does not hold" in ann
    assert "at or after reaching the current step (2026-03-02 10:10:00)" in ann
    assert "ann-view" not in ann


UPGRADE_CONTENT = """
templates:
  - {name: hello, channel: email, subject: "Hello", html: "<p>Hi</p>"}
journeys:
  - name: upgrade
    trigger: {attribute_changed: {name: plan, to: pro}}
    entry_filter: {attribute: {name: email, exists: true}}
    steps:
      - {id: hello, send: {channel: email, template: hello}}
      - id: engaged
        wait_until:
          condition: {performed: {event: opened_app, within: 7d}}
          timeout: 3d
"""
REPR = re.compile(r"\b(Attribute|Performed|Comparison|InSegment|AttributeChanged|EventTrigger)\(")


def test_explain_is_in_words_and_gives_the_ledger_status_of_a_failed_email(tmp_path):
    (tmp_path / "content").mkdir()
    (tmp_path / "content" / "definitions.yml").write_text(UPGRADE_CONTENT)
    home = Workspace(home=tmp_path / "home", content_dir=tmp_path / "content")
    content, project = prepare_workspace(home)
    land_messages(
        home.events_landing_dir,
        [identify("ann", START, plan="pro"), identify("bob", START, plan="free")],
    )
    # A real SMTP server that refuses ann's mailbox: her email fails for good.
    with SmtpSink("127.0.0.1", 0, tmp_path / "mail", refuse=["ann@example.com"]) as sink:
        smtp = SmtpEmailProvider(SmtpSettings(host=sink.host, port=sink.port, timeout=5))
        run_pipeline(home, content, project, {"email": smtp}, as_of=START + timedelta(hours=1))

    ann = explain_journey(home, content, user_id="ann", journey="upgrade")
    history = ann.split("history:")[1].split("messages:")[0]
    assert "sent" not in history, history  # the email failed: "sent" was the old wording
    sent_line = next(line for line in ann.splitlines() if "queued email template hello" in line)
    assert "failed: " in sent_line and "550" in sent_line, sent_line
    assert 'started 2026-03-02 10:00:00 by trait plan changing to "pro"' in ann
    assert "step hello: email template hello queued 2026-03-02 10:00:00: failed: " in ann
    assert (
        "next: step engaged waits until performed opened_app at least once within 1w "
        "(it does not hold now); after 3d" in ann
    )
    assert "then: the journey completes" in ann

    bob = explain_journey(home, content, user_id="bob", journey="upgrade")
    assert 'never entered; triggered by trait plan changing to "pro"' in bob
    assert "entry_filter (trait email is set) holds" in bob
    for text in (ann, bob):
        assert not REPR.search(text), text
