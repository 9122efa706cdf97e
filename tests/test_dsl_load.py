"""Parsing the authoring formats (docs/authoring.md) into the typed definitions."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from nudge.core.dsl.checks import segment_build_order
from nudge.core.dsl.durations import format_duration, parse_duration
from nudge.core.dsl.load import (
    load_content_dir,
    merge_content,
    parse_definitions,
    read_yaml,
    segment_dependencies,
)
from nudge.core.dsl.problems import DefinitionError
from nudge.core.dsl.spec import (
    All,
    AnyOf,
    Attribute,
    AttributeChanged,
    Branch,
    Broadcast,
    Comparison,
    Content,
    DateTrigger,
    EventTrigger,
    Everyone,
    Exit,
    FrequencyCap,
    Goal,
    InSegment,
    MessageCondition,
    Not,
    Performed,
    PropertyFilter,
    QuietHours,
    RandomBucket,
    Reentry,
    SegmentEntered,
    SegmentExited,
    Send,
    Split,
    Subscription,
    Topic,
    UpdateAttribute,
    Wait,
    WaitUntil,
    Window,
)

DSL_JOURNEY_EXAMPLE = """
journeys:
  - name: onboarding
    trigger: {segment_entered: new_signups}
    entry_filter: {attribute: {name: email, exists: true}}   # optional
    reentry: never            # never (default) | always | {after: 30d}
    exit_when: {performed: {event: account_closed}}            # optional; checked every run
    exit_on_trigger_lost: true  # segment triggers: leave when the user leaves the segment (default true)
    goal: {condition: {performed: {event: order_completed}}, within: 14d}   # optional; converted, then exits
    holdout: {percent: 10}    # optional control group: enters, is tracked, is never messaged
    steps:
      - {id: welcome, send: {channel: email, template: welcome_email}}
      - {id: pause, wait: 2d}
      - id: activated
        branch:
          if: {performed: {event: project_created}}
          then:
            - {id: tips, send: {channel: email, template: pro_tips}}
          else:
            - {id: nudge_sms, send: {channel: sms, template: come_back_sms, topic: product_updates}}
      - {id: hold, wait_until: {condition: {performed: {event: project_created}}, timeout: 5d, on_timeout: exit}}
      - {id: office_hours, window: {days: [mon, tue, wed, thu, fri], from: "09:00", to: "17:00", timezone_attribute: timezone, default_timezone: UTC}}
      - id: ab
        split:
          - {percent: 50, steps: [{id: variant_a, send: {channel: push, template: push_a}}]}
          - {percent: 50, steps: [{id: variant_b, send: {channel: push, template: push_b}}]}
      - {id: mark, update_attribute: {name: onboarded, value: true}}
      - {id: done, exit: true}
"""

DSL_SEGMENT_EXAMPLE = """
segments:
  - name: lapsed_buyers
    description: bought before, nothing in the last 30 days
    condition:
      all:
        - performed: {event: order_completed, times: {gte: 1}}
        - performed: {event: order_completed, times: {eq: 0}, within: 30d}
        - attribute: {name: email, exists: true}
"""

DSL_POLICIES_AND_TEMPLATES = """
policies:
  frequency_caps:
    - {channel: email, max: 1, per: 1d}
  quiet_hours: {from: "21:00", to: "08:00", timezone_attribute: timezone, default_timezone: UTC}
templates:
  - name: welcome_email
    channel: email
    subject: "Welcome, {{ user.first_name | default('there') }}"
    preheader: "Three things to try first"
    html: "<p>Hi {{ user.first_name }}</p><p><a href='{{ unsubscribe_url }}'>Unsubscribe</a></p>"
    text: "Hi {{ user.first_name }}"
  - {name: come_back_sms, channel: sms, body: "We miss you, {{ user.first_name }}. Reply STOP to opt out."}
  - {name: push_a, channel: push, title: "Your project awaits", body: "Finish setting up", data: {screen: home}}
  - {name: crm_hook, channel: webhook, method: POST, url: "https://example.invalid/hook", json: {id: "{{ user.id }}"}}
  - {name: team_alert, channel: slack, text: "{{ user.email }} upgraded"}
  - {name: inbox_tip, channel: in_app, title: "Tip", body: "Try the CLI"}
topics:
  - {name: product_updates, default: subscribed}
  - {name: newsletter, default: unsubscribed}
  - {name: offers, channels: [email, sms], description: Deals}
"""


def parse_ok(text: str) -> Content:
    content, problems = parse_definitions(yaml.safe_load(textwrap.dedent(text)), "t.yml")
    assert problems == []
    return content


def condition_of(text: str):
    content = parse_ok(f"segments:\n  - name: s\n    condition: {text}\n")
    return content.segments[0].condition


def journey_of(body: str):
    text = "journeys:\n  - name: j\n" + textwrap.indent(textwrap.dedent(body), "    ")
    return parse_ok(text).journeys[0]


def step_of(text: str):
    return journey_of(f"trigger: {{event: e}}\nsteps:\n  - {text}\n").steps[0]


# --- durations -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("15m", timedelta(minutes=15)),
        ("6h", timedelta(hours=6)),
        ("3d", timedelta(days=3)),
        ("2w", timedelta(weeks=2)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("2d4h30m", timedelta(days=2, hours=4, minutes=30)),
        ("0s", timedelta(0)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    assert parse_duration(format_duration(expected)) == expected


@pytest.mark.parametrize("text", ["", "12", "3 days", "12h1d", "1.5h", "-3d", "3D", "d"])
def test_parse_duration_rejects_with_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match=r"largest unit first, e\.g\. 30s"):
        parse_duration(text)


def test_format_duration() -> None:
    assert format_duration(timedelta(days=1, hours=12)) == "1d12h"
    assert format_duration(timedelta(days=14)) == "2w"
    assert format_duration(timedelta(hours=72)) == "3d"
    assert format_duration(timedelta(0)) == "0s"
    assert format_duration(-timedelta(days=3)) == "-3d"


# --- the authoring formats' reference examples -------------------------------------------------


def test_dsl_segment_example_parses() -> None:
    (segment,) = parse_ok(DSL_SEGMENT_EXAMPLE).segments
    assert segment.name == "lapsed_buyers"
    assert segment.description == "bought before, nothing in the last 30 days"
    assert segment.origin.file == "t.yml"
    assert segment.condition == All(
        (
            Performed("order_completed", Comparison("gte", 1)),
            Performed("order_completed", Comparison("eq", 0), within=timedelta(days=30)),
            Attribute("email", Comparison("exists", True)),
        )
    )


def test_dsl_journey_example_parses() -> None:
    (journey,) = parse_ok(DSL_JOURNEY_EXAMPLE).journeys
    assert journey.trigger == SegmentEntered("new_signups")
    assert journey.entry_filter == Attribute("email", Comparison("exists", True))
    assert journey.reentry == Reentry("never")
    assert journey.exit_when == Performed("account_closed")
    assert journey.exit_on_trigger_lost is True
    assert journey.goal == Goal(Performed("order_completed"), timedelta(days=14), exit=True)
    assert journey.holdout_percent == 10
    assert journey.max_event_age == timedelta(hours=72)
    assert [s.id for s in journey.steps] == [
        "welcome", "pause", "activated", "hold", "office_hours", "ab", "mark", "done",
    ]  # fmt: skip
    welcome, pause, activated, hold, office, ab, mark, done = (s.action for s in journey.steps)
    assert welcome == Send("email", "welcome_email")
    assert pause == Wait(timedelta(days=2))
    assert isinstance(activated, Branch)
    assert activated.condition == Performed("project_created")
    assert [s.action for s in activated.then] == [Send("email", "pro_tips")]
    assert [s.action for s in activated.otherwise] == [
        Send("sms", "come_back_sms", topic="product_updates")
    ]
    assert hold == WaitUntil(Performed("project_created"), timedelta(days=5), "exit")
    assert office == Window(
        ("mon", "tue", "wed", "thu", "fri"), "09:00", "17:00", "timezone", "UTC"
    )
    assert isinstance(ab, Split)
    assert [(p.percent, p.steps[0].id) for p in ab.paths] == [(50, "variant_a"), (50, "variant_b")]
    assert mark == UpdateAttribute("onboarded", True)
    assert done == Exit()


def test_dsl_policies_templates_and_topics_parse() -> None:
    content = parse_ok(DSL_POLICIES_AND_TEMPLATES)
    assert content.policies.frequency_caps == (FrequencyCap("email", 1, timedelta(days=1)),)
    assert content.policies.quiet_hours == QuietHours("21:00", "08:00", "timezone", "UTC")
    assert [(t.name, t.channel) for t in content.templates] == [
        ("welcome_email", "email"), ("come_back_sms", "sms"), ("push_a", "push"),
        ("crm_hook", "webhook"), ("team_alert", "slack"), ("inbox_tip", "in_app"),
    ]  # fmt: skip
    welcome = content.template("welcome_email")
    assert welcome is not None
    assert set(welcome.fields) == {"subject", "preheader", "html", "text"}
    crm = content.template("crm_hook")
    assert crm is not None and crm.fields["json"] == {"id": "{{ user.id }}"}
    assert content.topic("product_updates").default_subscribed is True  # type: ignore[union-attr]
    assert content.topic("newsletter").default_subscribed is False  # type: ignore[union-attr]
    assert content.topic("newsletter").channels == ()  # type: ignore[union-attr]
    assert content.topic("offers") == Topic("offers", True, "Deals", ("email", "sms"))


def test_dsl_examples_together_pass_the_cross_checks(tmp_path: Path) -> None:
    # The journey example's segment and the templates it sends are declared here.
    (tmp_path / "journeys.yml").write_text(DSL_JOURNEY_EXAMPLE)
    (tmp_path / "segments.yml").write_text(
        DSL_SEGMENT_EXAMPLE
        + "  - {name: new_signups, condition: {attribute: {name: created_at, newer_than: 7d}}}\n"
    )
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "content.yaml").write_text(DSL_POLICIES_AND_TEMPLATES)
    (tmp_path / "more" / "extra.yml").write_text(
        """
templates:
  - {name: pro_tips, channel: email, subject: Tips, html: "<p>tips</p>"}
  - {name: push_b, channel: push, title: B, body: b}
"""
    )
    content = load_content_dir(tmp_path)
    assert [s.name for s in content.segments] == ["lapsed_buyers", "new_signups"]
    assert content.journey("onboarding") is not None
    assert len(content.templates) == 8
    assert content.policies.quiet_hours is not None


# --- conditions ------------------------------------------------------------------------------------


def test_boolean_conditions() -> None:
    cond = condition_of(
        "{any: [{everyone: true}, {not: {in_segment: vips}}, {all: [{attribute: {name: plan, eq: pro}}]}]}"
    )
    assert cond == AnyOf(
        (Everyone(), Not(InSegment("vips")), All((Attribute("plan", Comparison("eq", "pro")),)))
    )


@pytest.mark.parametrize(
    ("op_text", "expected"),
    [
        ("eq: 5", Comparison("eq", 5)),
        ('eq: "5"', Comparison("eq", "5")),
        ("ne: free", Comparison("ne", "free")),
        ("gt: 10", Comparison("gt", 10)),
        ("gte: 1.5", Comparison("gte", 1.5)),
        ("lt: m", Comparison("lt", "m")),
        ("lte: 0", Comparison("lte", 0)),
        ("in: [free, trial]", Comparison("in", ["free", "trial"])),
        ("contains: vip", Comparison("contains", "vip")),
        ("starts_with: '+44'", Comparison("starts_with", "+44")),
        ("exists: false", Comparison("exists", False)),
        ("newer_than: 7d", Comparison("newer_than", timedelta(days=7))),
        ("older_than: 1d12h", Comparison("older_than", timedelta(days=1, hours=12))),
        ("within_next: 3d", Comparison("within_next", timedelta(days=3))),
        (
            'before: "2026-01-01T09:00:00Z"',
            Comparison("before", datetime(2026, 1, 1, 9, tzinfo=UTC)),
        ),
        (
            'after: "2026-01-01T10:00:00+01:00"',
            Comparison("after", datetime(2026, 1, 1, 9, tzinfo=UTC)),
        ),
        ('after: "2026-01-01T09:00:00"', Comparison("after", datetime(2026, 1, 1, 9, tzinfo=UTC))),
    ],
)
def test_attribute_operators(op_text: str, expected: Comparison) -> None:
    assert condition_of(f"{{attribute: {{name: t, {op_text}}}}}") == Attribute("t", expected)


def test_performed_with_times_within_and_where() -> None:
    cond = condition_of(
        "{performed: {event: order_completed, times: {lt: 3}, within: 2w,"
        " where: [{property: items.0.sku, eq: A1}, {property: total, gte: 100}]}}"
    )
    assert cond == Performed(
        "order_completed",
        Comparison("lt", 3),
        timedelta(weeks=2),
        (
            PropertyFilter(("items", "0", "sku"), Comparison("eq", "A1")),
            PropertyFilter(("total",), Comparison("gte", 100)),
        ),
    )


@pytest.mark.parametrize("op", ["eq", "gte", "gt", "lte", "lt"])
def test_times_operators(op: str) -> None:
    assert condition_of(f"{{performed: {{event: e, times: {{{op}: 2}}}}}}") == Performed(
        "e", Comparison(op, 2)
    )


def test_message_condition() -> None:
    cond = condition_of(
        "{message: {status: opened, channel: email, journey: onboarding, template: welcome_email,"
        " times: {gte: 2}, within: 7d}}"
    )
    assert cond == MessageCondition(
        "opened", "email", "onboarding", "welcome_email", Comparison("gte", 2), timedelta(days=7)
    )
    assert condition_of("{message: {status: bounced}}") == MessageCondition("bounced")


def test_subscription_and_random_bucket() -> None:
    assert condition_of("{subscription: {topic: news, subscribed: false}}") == Subscription(
        "news", False
    )
    on_sms = condition_of("{subscription: {topic: news, subscribed: true, channel: sms}}")
    assert on_sms == Subscription("news", True, "sms")
    # Without a channel the repr is the one written before channels existed, so the version (a
    # hash of the repr) of a journey using the condition does not change.
    assert repr(Subscription("news", False)) == "Subscription(topic='news', subscribed=False)"
    assert repr(on_sms) == "Subscription(topic='news', subscribed=True, channel='sms')"
    assert condition_of("{random_bucket: {percent: 25, salt: exp1}}") == RandomBucket(25, "exp1")
    assert condition_of("{random_bucket: {percent: 12.5}}") == RandomBucket(12.5, "")


def test_sql_segment() -> None:
    content = parse_ok(
        "segments:\n  - {name: big_spenders, sql: 'select user_id from {{ ref(\"fct_events\") }}'}\n"
    )
    (segment,) = content.segments
    assert segment.condition is None
    assert segment.sql is not None and "fct_events" in segment.sql


# --- triggers --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{segment_entered: vips}", SegmentEntered("vips")),
        ("{segment_exited: vips}", SegmentExited("vips")),
        ("{event: {name: order_completed}}", EventTrigger("order_completed")),
        (
            "{event: {name: order_completed, where: [{property: total, gt: 50}]}}",
            EventTrigger("order_completed", (PropertyFilter(("total",), Comparison("gt", 50)),)),
        ),
        ("{attribute_changed: {name: plan}}", AttributeChanged("plan")),
        (
            "{attribute_changed: {name: plan, to: pro}}",
            AttributeChanged("plan", "pro", has_to=True),
        ),
        (
            "{attribute_changed: {name: plan, to: null}}",
            AttributeChanged("plan", None, has_to=True),
        ),
        ("{date: {attribute: trial_ends_at}}", DateTrigger("trial_ends_at")),
        (
            '{date: {attribute: trial_ends_at, offset: -3d, at: "09:00", timezone_attribute: timezone}}',
            DateTrigger("trial_ends_at", -timedelta(days=3), "09:00", "timezone"),
        ),
        (
            "{date: {attribute: birthday, offset: 1d12h}}",
            DateTrigger("birthday", timedelta(days=1, hours=12)),
        ),
        ("{broadcast: {segment: everyone_seg}}", Broadcast("everyone_seg")),
        (
            '{broadcast: {segment: all_users, at: "2026-02-01T12:00:00Z"}}',
            Broadcast("all_users", datetime(2026, 2, 1, 12, tzinfo=UTC)),
        ),
    ],
)
def test_triggers(text: str, expected: object) -> None:
    assert journey_of(f"trigger: {text}\nsteps: []\n").trigger == expected


def test_broadcast_time_relative_to_a_scenario_start() -> None:
    data = yaml.safe_load(
        'name: sc\nstart: "2026-01-01T00:00:00Z"\nsteps: []\n'
        'journeys:\n  - {name: j, trigger: {broadcast: {segment: s, at: "+1d"}}, steps: []}\n'
    )
    start = datetime(2026, 1, 1, tzinfo=UTC)
    content, problems = parse_definitions(
        data, "scenario.yml", ignore_keys=("name", "start", "steps"), relative_to=start
    )
    assert problems == []
    assert content.journeys[0].trigger == Broadcast("s", start + timedelta(days=1))


def test_journey_settings() -> None:
    journey = journey_of(
        """
        trigger: {event: {name: e}}
        reentry: {after: 30d}
        exit_on_trigger_lost: false
        goal: {condition: {performed: {event: bought}}, exit: false}
        max_event_age: 6h
        description: hello
        steps: []
        """
    )
    assert journey.reentry == Reentry("after", timedelta(days=30))
    assert journey.exit_on_trigger_lost is False
    assert journey.goal == Goal(Performed("bought"), None, exit=False)
    assert journey.max_event_age == timedelta(hours=6)
    assert journey.description == "hello"
    assert journey.holdout_percent is None
    assert journey_of("trigger: {event: e}\nreentry: always\nsteps: []\n").reentry == Reentry(
        "always"
    )


# --- steps -----------------------------------------------------------------------------------------


def test_send_step_with_topic_and_transactional() -> None:
    step = step_of("{id: s, send: {channel: sms, template: t, topic: news, transactional: true}}")
    assert step.action == Send("sms", "t", "news", True)


def test_step_if() -> None:
    step = step_of("{id: s, if: {attribute: {name: plan, eq: pro}}, wait: 1h}")
    assert step.if_ == Attribute("plan", Comparison("eq", "pro"))
    assert step.action == Wait(timedelta(hours=1))


def test_wait_until_continue_and_window_defaults() -> None:
    step = step_of(
        "{id: w, wait_until: {condition: {everyone: true}, timeout: 1d, on_timeout: continue}}"
    )
    assert step.action == WaitUntil(Everyone(), timedelta(days=1), "continue")
    window = step_of('{id: w, window: {from: "9:30", to: "17:00"}}').action
    assert window == Window(
        ("mon", "tue", "wed", "thu", "fri", "sat", "sun"), "09:30", "17:00", None, "UTC"
    )


def test_update_attribute_to_null_unsets() -> None:
    assert step_of(
        "{id: u, update_attribute: {name: coupon, value: null}}"
    ).action == UpdateAttribute("coupon", None)


def test_nested_split_in_branch() -> None:
    step = step_of(
        "{id: b, branch: {if: {everyone: true}, then: [{id: s, split: [{percent: 100, steps: [{id: x, exit: true}]}]}]}}"
    )
    assert isinstance(step.action, Branch)
    inner = step.action.then[0].action
    assert isinstance(inner, Split) and inner.paths[0].steps[0].action == Exit()
    assert step.action.otherwise == ()


# --- files, merging, dependency order --------------------------------------------------------------


def test_unquoted_clock_times_stay_text(tmp_path: Path) -> None:
    path = tmp_path / "p.yml"
    path.write_text("policies:\n  quiet_hours: {from: 21:00, to: 08:00}\n")
    content, problems = parse_definitions(read_yaml(path), str(path))
    assert problems == []
    assert content.policies.quiet_hours == QuietHours("21:00", "08:00")


def test_merge_content_replaces_same_names_and_policies_when_asked() -> None:
    base = parse_ok(
        DSL_SEGMENT_EXAMPLE
        + "  - {name: other, condition: {everyone: true}}\n"
        + "policies: {frequency_caps: [{channel: any, max: 3, per: 1d}]}\n"
    )
    override = parse_ok(
        "segments:\n  - {name: lapsed_buyers, condition: {everyone: true}}\n  - {name: new, condition: {everyone: true}}\n"
    )
    merged = merge_content(base, override, override_policies=False)
    assert [s.name for s in merged.segments] == ["lapsed_buyers", "other", "new"]
    assert merged.segment("lapsed_buyers").condition == Everyone()  # type: ignore[union-attr]
    assert merged.policies == base.policies
    assert merge_content(base, override).policies == base.policies
    assert merge_content(base, override, override_policies=True).policies == override.policies


def test_segment_dependencies_and_build_order() -> None:
    content = parse_ok(
        """
        segments:
          - {name: c, condition: {all: [{in_segment: b}, {not: {in_segment: a}}]}}
          - {name: b, condition: {in_segment: a}}
          - {name: a, condition: {everyone: true}}
          - {name: d, condition: {in_segment: sql_seg}}
        """
    )
    assert segment_dependencies(content.segments[0]) == {"a", "b"}
    order = segment_build_order(content)
    assert order.index("a") < order.index("b") < order.index("c")
    assert set(order) == {"a", "b", "c", "d"}


def test_missing_content_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match="content directory does not exist"):
        load_content_dir(tmp_path / "nope")


def test_empty_files_and_directories_give_empty_content(tmp_path: Path) -> None:
    (tmp_path / "empty.yml").write_text("")
    assert load_content_dir(tmp_path) == Content()
