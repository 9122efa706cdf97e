"""`nudge explain --segment`: the condition tree with each node's value, on a real warehouse."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from nudge.cli.main import main
from nudge.core.checked_content import load_workspace_content
from nudge.core.dsl.spec import CHANNELS
from nudge.core.landing.writer import land_messages
from nudge.core.segments.explain import ExplainError, explain_segment
from nudge.core.workspace import Workspace
from orchestration.stages import prepare_project, run_pipeline
from senders.capture import CapturingProvider

pytestmark = pytest.mark.slow  # one pipeline run (dbt parse and build) for the module

T0 = datetime(2026, 1, 1)
D = timedelta(days=1)
AS_OF = T0 + 40 * D

CONTENT = """
segments:
  - name: buyers
    condition: {performed: {event: order_completed, within: 30d}}
  - name: lapsed
    condition:
      all:
        - performed: {event: order_completed, times: {gte: 1}, where: [{property: amount, gt: 10}]}
        - not: {in_segment: buyers}
        - attribute: {name: email, exists: true}
  - name: news_by_sms
    condition: {subscription: {topic: news, subscribed: true, channel: sms}}
topics:
  - {name: news}
"""


def stamp(moment: datetime) -> str:
    return moment.isoformat() + "Z"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("explain")
    (root / "content").mkdir()
    (root / "content" / "defs.yml").write_text(CONTENT)
    workspace = Workspace(home=root / "home", content_dir=root / "content").ensure()
    order = {"type": "track", "event": "order_completed"}
    land_messages(
        workspace.events_landing_dir,
        [
            {
                "type": "identify",
                "userId": "u1",
                "traits": {
                    "email": "a@example.com",
                    "cio_subscription_preferences": {"topics": {"news": {"sms": False}}},
                },
                "timestamp": stamp(T0),
            },
            {**order, "userId": "u1", "properties": {"amount": 20}, "timestamp": stamp(T0)},
            {**order, "userId": "u1", "properties": {"amount": 5}, "timestamp": stamp(T0)},
            {
                "type": "identify",
                "userId": "u2",
                "traits": {"email": "b@example.com"},
                "timestamp": stamp(T0),
            },
            {**order, "userId": "u2", "properties": {"amount": 30}, "timestamp": stamp(AS_OF - D)},
            {"type": "identify", "userId": "u3", "timestamp": stamp(T0)},
        ],
    )
    content = load_workspace_content(workspace)
    project = prepare_project(workspace, content)
    providers = {channel: CapturingProvider(channel) for channel in CHANNELS}
    run_pipeline(workspace, content, project, providers, as_of=AS_OF)
    return {"workspace": workspace, "content": content}


def explain(built: dict[str, Any], user: str, segment: str, **kw: Any) -> str:
    return explain_segment(
        built["workspace"], built["content"], user_id=user, segment=segment, **kw
    )


def test_member_with_every_fact(built: dict[str, Any]) -> None:
    assert explain(built, "u1", "lapsed") == "\n".join(
        [
            "segment lapsed for user u1 at as_of 2026-02-10T00:00:00: member",
            "✓ all of 3 conditions -> true",
            "  ✓ performed order_completed at least once where amount is more than 10: "
            "1 event up to 2026-02-10T00:00:00 -> true",
            "  ✓ not -> true",
            "    ✗ in segment buyers: stored member of segments.buyers -> false",
            "      ✗ performed order_completed at least once within 30d: "
            "0 events in (2026-01-11T00:00:00, 2026-02-10T00:00:00] -> false",
            '  ✓ trait email is set: value "a@example.com" -> true',
            "stored membership (marts.fct_segment_memberships): member; agrees",
        ]
    )


def test_non_member_shows_the_failing_nodes(built: dict[str, Any]) -> None:
    text = explain(built, "u2", "lapsed")
    assert text.startswith("segment lapsed for user u2 at as_of 2026-02-10T00:00:00: not a member")
    assert "  ✗ not -> false" in text
    assert "      ✓ performed order_completed at least once within 30d: 1 event in" in text
    assert text.endswith("stored membership (marts.fct_segment_memberships): not a member; agrees")
    u3 = explain(built, "u3", "lapsed")
    assert "  ✗ trait email is set: trait not set -> false" in u3
    assert "0 events up to 2026-02-10T00:00:00 -> false" in u3


def test_a_per_channel_subscription_shows_the_topic_preference(built: dict[str, Any]) -> None:
    assert explain(built, "u1", "news_by_sms").splitlines()[1] == (
        '✗ subscribed to topic news on sms: unsubscribed "not set", '
        'topic preference {"sms": false} -> false'
    )
    assert explain(built, "u2", "news_by_sms").splitlines()[1] == (
        '✓ subscribed to topic news on sms: unsubscribed "not set", '
        'topic preference "not set" -> true'
    )


def test_sql_segment_says_it_is_a_model(built: dict[str, Any]) -> None:
    assert explain(built, "u1", "power_users") == "\n".join(
        [
            "segment power_users for user u1 at as_of 2026-02-10T00:00:00: not a member",
            "power_users is a SQL model segment: the user is not in segments.power_users",
        ]
    )


def test_unknown_user_segment_or_instant_is_a_clear_error(built: dict[str, Any]) -> None:
    with pytest.raises(ExplainError, match="user 'nobody' is not a known user"):
        explain(built, "nobody", "lapsed")
    with pytest.raises(
        ExplainError, match="unknown segment 'lapsd' \\(did you mean 'lapsed'\\?\\)"
    ):
        explain(built, "u1", "lapsd")
    with pytest.raises(ExplainError, match="holds the state at as_of 2026-02-10T00:00:00"):
        explain(built, "u1", "lapsed", as_of=T0)
    assert explain(built, "u1", "lapsed", as_of=AS_OF).endswith("agrees")


def test_cli_prints_the_explanation(
    built: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    workspace: Workspace = built["workspace"]
    args = ["--home", str(workspace.home), "--content", str(workspace.content_dir)]
    assert main([*args, "explain", "--user", "u1", "--segment", "buyers"]) == 0
    out = capsys.readouterr().out
    assert (
        out.splitlines()[0]
        == "segment buyers for user u1 at as_of 2026-02-10T00:00:00: not a member"
    )
    assert main([*args, "explain", "--user", "ghost", "--segment", "buyers"]) == 2
    assert "user 'ghost' is not a known user" in capsys.readouterr().err


def test_no_warehouse_is_a_clear_error(tmp_path: Path, built: dict[str, Any]) -> None:
    empty = Workspace(home=tmp_path, content_dir=tmp_path)
    with pytest.raises(ExplainError, match="run the pipeline first"):
        explain_segment(empty, built["content"], user_id="u1", segment="lapsed")
