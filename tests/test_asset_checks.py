"""Asset checks on the ledger and on each journey: they pass on a real run and fail when the
tables are corrupted."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from nudge.core.dsl.spec import Content, Topic
from nudge.core.landing.writer import land_messages
from orchestration.asset_keys import LEDGER, journey_key
from orchestration.run_context import as_of_tag

pytestmark = pytest.mark.slow

START = datetime(2026, 3, 2, 9, 0)
CONTENT = """
segments:
  - name: new_signups
    condition: {performed: {event: signed_up, within: 7d}}
topics:
  - {name: product_updates, default: subscribed}
templates:
  - {name: welcome_email, channel: email, subject: "Welcome", html: "<p>Hi</p>"}
journeys:
  - name: onboarding
    trigger: {segment_entered: new_signups}
    steps:
      - {id: welcome, send: {channel: email, template: welcome_email, topic: product_updates}}
      - {id: pause, wait: 2d}
"""
CHECKS = {
    ("delivery/ledger", "one_send_per_entry_step"),
    ("delivery/ledger", "every_send_has_an_outbox_row"),
    ("delivery/ledger", "no_marketing_to_opted_out"),
    ("journeys/onboarding", "entries_consistent"),
}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from orchestration.location import load_location

    content = tmp_path / "content"
    content.mkdir()
    (content / "definitions.yml").write_text(CONTENT)
    home = tmp_path / "home"
    for name, value in {
        "NUDGE_HOME": str(home),
        "NUDGE_CONTENT": str(content),
        "NUDGE_WAREHOUSE_PATH": str(home / "warehouse.duckdb"),
        "NUDGE_EMAIL_PROVIDER": "capture",
    }.items():
        monkeypatch.setenv(name, value)
    load_location.cache_clear()
    stamp = START.isoformat() + "Z"
    land_messages(
        home / "landing" / "events",
        [
            message
            for user in ("ada", "bob")
            for message in (
                {"type": "identify", "userId": user, "timestamp": stamp,
                 "traits": {"email": f"{user}@example.com"}},
                {"type": "track", "userId": user, "event": "signed_up", "timestamp": stamp},
            )
        ],
    )  # fmt: skip
    yield home
    load_location.cache_clear()


def materialize(selection: dg.AssetSelection | None = None) -> dg.ExecuteInProcessResult:
    from orchestration.definitions import build_definitions

    defs = build_definitions()
    return dg.materialize(
        [*defs.assets, *defs.asset_checks],
        resources=dict(defs.resources),
        instance=dg.DagsterInstance.ephemeral(),
        tags=as_of_tag(START + timedelta(hours=1)),
        selection=selection,
    )


def outcomes(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], bool]:
    """Results of the checks under test (dbt tests are checks too)."""
    evaluations = {
        (e.asset_key.to_user_string(), e.check_name): e.passed
        for e in result.get_asset_check_evaluations()
    }
    return {key: passed for key, passed in evaluations.items() if key in CHECKS}


def test_checks_pass_on_a_run_and_fail_on_corrupted_tables(home: Path) -> None:
    result = materialize()
    assert result.success
    assert outcomes(result) == dict.fromkeys(CHECKS, True)

    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        assert con.execute("select count(*) from nudge.delivery_ledger").fetchone() == (2,)
        # A second key for ada's welcome message, sent; and an orphan sent row.
        con.execute(
            """insert into nudge.outbox by name
               select * replace ('dup-key' as idempotency_key, 'dup-delivery' as delivery_id)
               from nudge.outbox where user_id = 'ada'"""
        )
        con.execute(
            """insert into nudge.delivery_ledger (idempotency_key, delivery_id, user_id, channel,
                   status) values ('dup-key', 'dup-delivery', 'ada', 'email', 'sent'),
                   ('orphan', 'orphan', 'bob', 'email', 'sent')"""
        )
        # Bob in the journey twice at once.
        con.execute(
            """insert into nudge.journey_entries (entry_id, journey, user_id, started_at, status,
                   current_step) select 'second', journey, user_id, started_at, 'active', 'pause'
               from nudge.journey_entries where user_id = 'bob'"""
        )
    checks_only = dg.AssetSelection.checks_for_assets(LEDGER, journey_key("onboarding"))
    failed = outcomes(materialize(checks_only))
    assert failed == {
        ("delivery/ledger", "one_send_per_entry_step"): False,
        ("delivery/ledger", "every_send_has_an_outbox_row"): False,
        ("delivery/ledger", "no_marketing_to_opted_out"): True,
        ("journeys/onboarding", "entries_consistent"): False,
    }


def test_opt_out_check_sees_sends_to_unsubscribed_or_topic_off(home: Path) -> None:
    from orchestration.defs.delivery.checks import sends_to_opted_out

    assert materialize().success
    content = Content(topics=(Topic("product_updates", True),))
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        (run_id,) = con.execute("select distinct run_id from nudge.delivery_ledger").fetchone()
        assert sends_to_opted_out(con, content, run_id) == []
        con.execute(
            """update marts.dim_users set unsubscribed = true,
                   traits = json_merge_patch(traits, '{"unsubscribed": true}')
               where user_id = 'ada'"""
        )
        con.execute(
            """update marts.dim_users set traits = json_merge_patch(traits,
                   '{"cio_subscription_preferences": {"topics": {"product_updates": false}}}')
               where user_id = 'bob'"""
        )
        assert sends_to_opted_out(con, content, run_id) == [
            ("ada", "onboarding", "welcome", "unsubscribed"),
            ("bob", "onboarding", "welcome", "topic off: product_updates on email"),
        ]
        assert sends_to_opted_out(con, content, "another-run") == []
