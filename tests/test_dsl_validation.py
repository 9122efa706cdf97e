"""Bad definitions: every problem is reported at once, naming the file, the item and the field."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from nudge.core.dsl.checks import check_content, segment_build_order
from nudge.core.dsl.load import load_content_dir, parse_definitions
from nudge.core.dsl.problems import DefinitionError, DefinitionProblem

SEGMENTS = """
segments:
  - {name: new_signups, condition: {attribute: {name: created_at, newer_than: 7d}}}
"""
TEMPLATES = """
templates:
  - {name: welcome_email, channel: email, subject: "Hi {{ user.first_name }}", html: "<p>Hi</p>"}
  - {name: come_back_sms, channel: sms, body: "We miss you"}
topics:
  - {name: product_updates, default: subscribed}
"""


def load_problems(
    tmp_path: Path, files: dict[str, str], **kwargs: object
) -> list[DefinitionProblem]:
    root = tmp_path / "content"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    with pytest.raises(DefinitionError) as caught:
        load_content_dir(root, **kwargs)  # type: ignore[arg-type]
    return caught.value.problems


def journey_problems(tmp_path: Path, journey: str) -> list[DefinitionProblem]:
    """Problems of a journey file loaded together with valid segments, templates and topics."""
    return load_problems(
        tmp_path,
        {
            "segments.yml": SEGMENTS,
            "templates.yml": TEMPLATES,
            "journeys.yml": textwrap.dedent(journey),
        },
    )


def only(problems: list[DefinitionProblem], file_end: str, item: str, field: str) -> str:
    """The message of the single problem for (file, item, field); fails listing all problems."""
    found = [
        p for p in problems if p.file.endswith(file_end) and p.item == item and p.field == field
    ]
    assert len(found) == 1, "\n".join(map(str, problems))
    return found[0].message


# --- the kinds of bad definition -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trigger", "field"),
    [
        ("{segment_entered: new_signup}", "trigger.segment_entered"),
        ("{segment_exited: new_signup}", "trigger.segment_exited"),
        ("{broadcast: {segment: new_signup}}", "trigger.broadcast.segment"),
    ],
)
def test_unknown_segment_in_a_trigger(tmp_path: Path, trigger: str, field: str) -> None:
    problems = journey_problems(
        tmp_path,
        f"""
        journeys:
          - name: onboarding
            trigger: {trigger}
            steps: [{{id: welcome, send: {{channel: email, template: welcome_email}}}}]
        """,
    )
    message = only(problems, "journeys.yml", "journey 'onboarding'", field)
    assert "unknown segment 'new_signup'" in message
    assert "did you mean 'new_signups'?" in message
    assert len(problems) == 1


def test_sql_segments_are_known_segments(tmp_path: Path) -> None:
    root = tmp_path / "content"
    root.mkdir()
    (root / "j.yml").write_text(
        "segments: [{name: s, condition: {in_segment: big_spenders}}]\n"
        "journeys: [{name: j, trigger: {segment_entered: big_spenders}, steps: []}]\n"
    )
    content = load_content_dir(root, sql_segments=["big_spenders"])
    assert content.segment("s") is not None
    problems = load_problems(tmp_path, {})
    assert {p.field for p in problems} == {"condition.in_segment", "trigger.segment_entered"}


def test_operator_typo_says_did_you_mean(tmp_path: Path) -> None:
    problems = load_problems(
        tmp_path,
        {
            "segments.yml": """
            segments:
              - name: lapsed_buyers
                condition:
                  all:
                    - performed: {event: order_completed}
                    - attribute: {name: age, gtt: 30}
            """
        },
    )
    message = only(
        problems, "segments.yml", "segment 'lapsed_buyers'", "condition.all[1].attribute"
    )
    assert message.startswith("unknown operator 'gtt'; expected one of eq, ne, gt")
    assert message.endswith("(did you mean 'gt'?)")
    assert str(problems[0]).endswith(
        "content/segments.yml: segment 'lapsed_buyers': condition.all[1].attribute: " + message
    )


def test_unknown_template_in_a_send(tmp_path: Path) -> None:
    problems = journey_problems(
        tmp_path,
        """
        journeys:
          - name: onboarding
            trigger: {segment_entered: new_signups}
            steps:
              - {id: pause, wait: 1d}
              - {id: welcome, send: {channel: email, template: welcome_emial}}
        """,
    )
    message = only(problems, "journeys.yml", "journey 'onboarding'", "steps[1].send.template")
    assert (
        "unknown template 'welcome_emial'" in message and "did you mean 'welcome_email'?" in message
    )


def test_template_channel_must_match_the_send(tmp_path: Path) -> None:
    problems = journey_problems(
        tmp_path,
        """
        journeys:
          - {name: j, trigger: {segment_entered: new_signups}, steps: [{id: s, send: {channel: sms, template: welcome_email}}]}
        """,
    )
    message = only(problems, "journeys.yml", "journey 'j'", "steps[0].send.channel")
    assert "sms" in message and "channel email" in message


def test_duplicate_step_ids_including_nested_steps(tmp_path: Path) -> None:
    problems = journey_problems(
        tmp_path,
        """
        journeys:
          - name: onboarding
            trigger: {segment_entered: new_signups}
            steps:
              - {id: welcome, send: {channel: email, template: welcome_email}}
              - id: check
                branch:
                  if: {everyone: true}
                  then: [{id: welcome, wait: 1d}]
              - {id: check, exit: true}
        """,
    )
    nested = only(problems, "journeys.yml", "journey 'onboarding'", "steps[1].branch.then[0].id")
    assert "step id 'welcome' is already used at steps[0]" in nested
    top = only(problems, "journeys.yml", "journey 'onboarding'", "steps[2].id")
    assert "step id 'check' is already used at steps[1]" in top


def test_wait_until_needs_a_timeout(tmp_path: Path) -> None:
    problems = journey_problems(
        tmp_path,
        """
        journeys:
          - name: onboarding
            trigger: {segment_entered: new_signups}
            steps:
              - {id: a, wait: 1h}
              - {id: b, wait: 1h}
              - {id: hold, wait_until: {condition: {performed: {event: project_created}}}}
        """,
    )
    message = only(problems, "journeys.yml", "journey 'onboarding'", "steps[2].wait_until.timeout")
    assert "missing" in message


def test_split_percents_must_sum_to_100(tmp_path: Path) -> None:
    problems = journey_problems(
        tmp_path,
        """
        journeys:
          - name: onboarding
            trigger: {segment_entered: new_signups}
            steps:
              - id: ab
                split:
                  - {percent: 50, steps: [{id: a, wait: 1d}]}
                  - {percent: 40, steps: [{id: b, wait: 1d}]}
        """,
    )
    message = only(problems, "journeys.yml", "journey 'onboarding'", "steps[0].split")
    assert "must add up to 100" in message and "50 + 40 = 90" in message


def test_undeclared_topic_in_a_send(tmp_path: Path) -> None:
    problems = journey_problems(
        tmp_path,
        """
        journeys:
          - name: onboarding
            trigger: {segment_entered: new_signups}
            steps:
              - {id: nudge, send: {channel: sms, template: come_back_sms, topic: product_update}}
        """,
    )
    message = only(problems, "journeys.yml", "journey 'onboarding'", "steps[0].send.topic")
    assert "undeclared topic 'product_update'" in message
    assert "did you mean 'product_updates'?" in message


def test_in_segment_cycle_names_the_cycle(tmp_path: Path) -> None:
    files = {
        "segments.yml": """
        segments:
          - {name: a, condition: {in_segment: b}}
          - {name: b, condition: {any: [{everyone: true}, {in_segment: a}]}}
          - {name: c, condition: {in_segment: a}}
        """
    }
    problems = load_problems(tmp_path, files)
    assert len(problems) == 1
    problem = problems[0]
    assert problem.file.endswith("segments.yml") and problem.item in ("segment 'a'", "segment 'b'")
    assert problem.field == "condition"
    assert "in_segment cycle: a -> b -> a" in problem.message
    content, _ = parse_definitions(yaml.safe_load(textwrap.dedent(files["segments.yml"])), "s.yml")
    with pytest.raises(ValueError, match="cycle"):
        segment_build_order(content)


def test_segment_referring_to_itself(tmp_path: Path) -> None:
    problems = load_problems(
        tmp_path, {"s.yml": "segments: [{name: me, condition: {in_segment: me}}]\n"}
    )
    assert "in_segment cycle: me -> me" in only(problems, "s.yml", "segment 'me'", "condition")


@pytest.mark.parametrize(
    ("field", "yaml_text"),
    [
        ("steps[0].wait", "{id: w, wait: 2 days}"),
        (
            "steps[0].wait_until.timeout",
            "{id: w, wait_until: {condition: {everyone: true}, timeout: 5}}",
        ),
    ],
)
def test_bad_duration(tmp_path: Path, field: str, yaml_text: str) -> None:
    problems = journey_problems(
        tmp_path,
        f"""
        journeys:
          - {{name: onboarding, trigger: {{segment_entered: new_signups}}, steps: [{yaml_text}]}}
        """,
    )
    message = only(problems, "journeys.yml", "journey 'onboarding'", field)
    assert "is not a duration" in message and "e.g. 30s, 15m, 6h, 3d, 2w, 1d12h" in message


def test_bad_duration_in_a_condition(tmp_path: Path) -> None:
    problems = load_problems(
        tmp_path,
        {
            "s.yml": "segments: [{name: s, condition: {any: [{performed: {event: e, within: 30days}}]}}]\n"
        },
    )
    message = only(problems, "s.yml", "segment 's'", "condition.any[0].performed.within")
    assert "'30days' is not a duration" in message


def test_bad_jinja(tmp_path: Path) -> None:
    problems = load_problems(
        tmp_path,
        {
            "templates.yml": """
            templates:
              - name: welcome_email
                channel: email
                subject: "Hi {{ user.first_name }"
                html: "<p>ok</p>"
              - {name: hook, channel: webhook, url: "https://x.invalid", json: {id: "{% if %}"}}
            """
        },
    )
    subject = only(problems, "templates.yml", "template 'welcome_email'", "subject")
    assert subject.startswith("template does not parse:") and "line 1" in subject
    assert "does not parse" in only(problems, "templates.yml", "template 'hook'", "json.id")


@pytest.mark.parametrize(
    ("template", "field", "needs"),
    [
        ("{name: t, channel: email, html: x}", "subject", "subject"),
        ("{name: t, channel: email, subject: x}", "html", "html"),
        ("{name: t, channel: sms, text: x}", "body", "body"),
        ("{name: t, channel: push, body: x}", "title", "title"),
        ("{name: t, channel: webhook, method: POST}", "url", "url"),
        ("{name: t, channel: slack, body: x}", "text", "text or blocks"),
        ("{name: t, channel: in_app, data: {}}", "title", "title or body"),
    ],
)
def test_template_missing_its_channel_fields(
    tmp_path: Path, template: str, field: str, needs: str
) -> None:
    problems = load_problems(tmp_path, {"t.yml": f"templates: [{template}]\n"})
    assert f"templates need {needs}" in only(problems, "t.yml", "template 't'", field)


def test_template_field_typo_is_pointed_out(tmp_path: Path) -> None:
    problems = load_problems(
        tmp_path, {"t.yml": "templates: [{name: t, channel: sms, boddy: hi}]\n"}
    )
    assert "is 'boddy' a misspelling of 'body'?" in only(problems, "t.yml", "template 't'", "body")


def test_message_condition_naming_unknown_journey_or_template(tmp_path: Path) -> None:
    problems = journey_problems(
        tmp_path,
        """
        segments:
          - name: engaged
            condition:
              all:
                - {message: {status: opened, journey: onbording}}
                - {message: {status: clicked, template: welcome_mail}}
        journeys:
          - {name: onboarding, trigger: {segment_entered: new_signups}, steps: []}
        """,
    )
    journey = only(problems, "journeys.yml", "segment 'engaged'", "condition.all[0].message")
    assert "unknown journey 'onbording'" in journey and "did you mean 'onboarding'?" in journey
    template = only(problems, "journeys.yml", "segment 'engaged'", "condition.all[1].message")
    assert "unknown template 'welcome_mail'" in template


def test_unknown_segment_in_a_journey_condition(tmp_path: Path) -> None:
    problems = journey_problems(
        tmp_path,
        """
        journeys:
          - name: j
            trigger: {segment_entered: new_signups}
            exit_when: {not: {in_segment: vip}}
            steps: [{id: s, if: {in_segment: vips}, wait: 1d}]
        """,
    )
    assert "unknown segment 'vip'" in only(
        problems, "journeys.yml", "journey 'j'", "exit_when.not.in_segment"
    )
    assert "unknown segment 'vips'" in only(
        problems, "journeys.yml", "journey 'j'", "steps[0].if.in_segment"
    )


@pytest.mark.parametrize(
    ("text", "item", "field"),
    [
        (
            "segments: [{name: Lapsed-Buyers, condition: {everyone: true}}]",
            "segment 'Lapsed-Buyers'",
            "name",
        ),
        ("topics: [{name: 1news}]", "topic '1news'", "name"),
        (
            "journeys: [{name: j, trigger: {event: e}, steps: [{id: Step1, exit: true}]}]",
            "journey 'j'",
            "steps[0].id",
        ),
        ("segments: [{condition: {everyone: true}}]", "segments[0]", "name"),
    ],
)
def test_names_must_match_the_pattern(tmp_path: Path, text: str, item: str, field: str) -> None:
    problems = load_problems(tmp_path, {"x.yml": text + "\n"})
    assert "[a-z][a-z0-9_]*" in only(problems, "x.yml", item, field) or "non-empty string" in only(
        problems, "x.yml", item, field
    )


def test_duplicate_names_across_files_name_both_files(tmp_path: Path) -> None:
    problems = load_problems(
        tmp_path,
        {
            "a.yml": "segments: [{name: vips, condition: {everyone: true}}]\n",
            "sub/b.yml": "segments: [{name: vips, condition: {everyone: true}}]\n",
        },
    )
    message = only(problems, "sub/b.yml", "segment 'vips'", "name")
    assert "also defined in" in message and message.count("a.yml") == 1


def test_policies_in_two_files(tmp_path: Path) -> None:
    problems = load_problems(
        tmp_path,
        {
            "a.yml": "policies: {frequency_caps: [{channel: any, max: 3, per: 1d}]}\n",
            "b.yml": "policies: {quiet_hours: {from: '21:00', to: '08:00'}}\n",
        },
    )
    assert "already defined in" in only(problems, "b.yml", "policies", "")


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    problems = load_problems(
        tmp_path, {"broken.yml": "segments:\n  - name: x\n     condition: {}\n"}
    )
    (problem,) = problems
    assert problem.file.endswith("broken.yml")
    assert problem.item.startswith("line 3")
    assert "YAML syntax error" in problem.message


def test_repeated_yaml_key_is_an_error(tmp_path: Path) -> None:
    problems = load_problems(
        tmp_path,
        {"dup.yml": "segments:\n  - name: x\n    name: y\n    condition: {everyone: true}\n"},
    )
    assert "duplicate key 'name'" in problems[0].message and problems[0].item.startswith("line 3")


def test_every_problem_of_every_file_at_once(tmp_path: Path) -> None:
    problems = load_problems(
        tmp_path,
        {
            "a.yml": """
            segments:
              - {name: s1, condition: {attribute: {name: age, gtt: 1}}}
              - {name: s2, condition: {performed: {event: e, times: {gte: -1}}}}
            """,
            "b.yml": """
            journeys:
              - name: j
                trigger: {segment_entered: nope}
                steps:
                  - {id: w, wait: soon}
                  - {id: w, send: {channel: email, template: missing}}
            """,
            "c.yml": "kitchen: sink\n",
        },
    )
    located = {(Path(p.file).name, p.item, p.field) for p in problems}
    assert located == {
        ("a.yml", "segment 's1'", "condition.attribute"),
        ("a.yml", "segment 's2'", "condition.performed.times.gte"),
        ("b.yml", "journey 'j'", "trigger.segment_entered"),
        ("b.yml", "journey 'j'", "steps[0].wait"),
        ("b.yml", "journey 'j'", "steps[1].id"),
        ("b.yml", "journey 'j'", "steps[1].send.template"),
        ("c.yml", "", "kitchen"),
    }
    # The error's text lists every problem, one per line.
    error = DefinitionError(problems)
    assert str(error).count("\n") == len(problems)


# --- parse-level checks ----------------------------------------------------------------------------


def parse_problems(text: str, **kwargs: object) -> list[DefinitionProblem]:
    _, problems = parse_definitions(yaml.safe_load(textwrap.dedent(text)), "f.yml", **kwargs)  # type: ignore[arg-type]
    return problems


def segment_problem(condition: str) -> DefinitionProblem:
    (problem,) = parse_problems(f"segments: [{{name: s, condition: {condition}}}]")
    assert (problem.file, problem.item) == ("f.yml", "segment 's'")
    return problem


@pytest.mark.parametrize(
    ("condition", "field", "expected"),
    [
        ("{attribute: {name: plan, in: pro}}", "condition.attribute.in", "expects a list"),
        (
            "{attribute: {name: plan, exists: yes_please}}",
            "condition.attribute.exists",
            "true or false",
        ),
        ("{attribute: {name: t, before: soon}}", "condition.attribute.before", "ISO 8601"),
        (
            "{attribute: {name: t, newer_than: 7}}",
            "condition.attribute.newer_than",
            "not a duration",
        ),
        ("{attribute: {name: t, eq: null}}", "condition.attribute.eq", "exists: false"),
        ("{attribute: {name: t, eq: 1, ne: 2}}", "condition.attribute", "exactly one operator"),
        ("{attribute: {eq: 1}}", "condition.attribute", "{name, <operator>: value}"),
        (
            "{performed: {event: e, times: {gte: 1, lt: 3}}}",
            "condition.performed.times",
            "exactly one key",
        ),
        (
            "{performed: {event: e, times: {about: 3}}}",
            "condition.performed.times",
            "unknown times operator",
        ),
        (
            "{performed: {event: e, where: [{property: a, eqq: 1}]}}",
            "condition.performed.where[0]",
            "did you mean 'eq'?",
        ),
        ("{performed: {event: e, withn: 1d}}", "condition.performed", "did you mean 'within'?"),
        ("{message: {status: opend}}", "condition.message.status", "did you mean 'opened'?"),
        (
            "{message: {status: sent, channel: mail}}",
            "condition.message.channel",
            "unknown channel",
        ),
        (
            "{subscription: {topic: t, subscribed: maybe}}",
            "condition.subscription.subscribed",
            "true or false",
        ),
        (
            "{subscription: {topic: t, subscribed: true, channel: text}}",
            "condition.subscription.channel",
            "unknown channel 'text'",
        ),
        ("{random_bucket: {percent: 150}}", "condition.random_bucket.percent", "from 0 to 100"),
        ("{everyone: false}", "condition.everyone", "expected true"),
        ("{all: []}", "condition.all", "at least one"),
        ("{everyone: true, not: {everyone: true}}", "condition", "exactly one key"),
        ("{perfromed: {event: e}}", "condition", "did you mean 'performed'?"),
    ],
)
def test_bad_conditions(condition: str, field: str, expected: str) -> None:
    problem = segment_problem(condition)
    assert problem.field == field
    assert expected in problem.message


def journey_problem(body: str) -> DefinitionProblem:
    (problem,) = parse_problems(
        "journeys:\n  - name: j\n" + textwrap.indent(textwrap.dedent(body), "    ")
    )
    assert (problem.file, problem.item) == ("f.yml", "journey 'j'")
    return problem


@pytest.mark.parametrize(
    ("body", "field", "expected"),
    [
        ("trigger: {segment_entred: x}\nsteps: []", "trigger", "did you mean 'segment_entered'?"),
        ("trigger: {event: e, segment_entered: x}\nsteps: []", "trigger", "exactly one key"),
        (
            "trigger: {date: {attribute: t, offset: 3 days}}\nsteps: []",
            "trigger.date.offset",
            "-3d",
        ),
        ("trigger: {date: {attribute: t, at: '9am'}}\nsteps: []", "trigger.date.at", "HH:MM"),
        (
            "trigger: {event: e}\nreentry: sometimes\nsteps: []",
            "reentry",
            "never, always or {after",
        ),
        (
            "trigger: {event: e}\nholdout: {percent: 101}\nsteps: []",
            "holdout.percent",
            "from 0 to 100",
        ),
        (
            "trigger: {event: e}\nexit_on_trigger_lost: 1\nsteps: []",
            "exit_on_trigger_lost",
            "true or false",
        ),
        (
            "trigger: {event: e}\ngoal: {condition: {everyone: true}, within: a week}\nsteps: []",
            "goal.within",
            "not a duration",
        ),
        ("trigger: {event: e}\nsteps: []\ndescripton: x", "", "did you mean 'description'?"),
        ("steps: []", "trigger", "missing"),
        ("trigger: {event: e}\nsteps: [{id: s, wiat: 1d}]", "steps[0]", "did you mean 'wait'?"),
        ("trigger: {event: e}\nsteps: [{id: s}]", "steps[0]", "exactly one step kind"),
        ("trigger: {event: e}\nsteps: [{wait: 1d}]", "steps[0].id", "missing"),
        (
            "trigger: {event: e}\nsteps: [{id: s, send: {channel: emial, template: t}}]",
            "steps[0].send.channel",
            "did you mean 'email'?",
        ),
        (
            "trigger: {event: e}\nsteps: [{id: s, window: {from: '09:00', to: 17}}]",
            "steps[0].window.to",
            "quote it",
        ),
        (
            "trigger: {event: e}\nsteps: [{id: s, window: {days: [monday], from: '09:00', to: '17:00'}}]",
            "steps[0].window.days[0]",
            "did you mean 'mon'?",
        ),
        (
            "trigger: {event: e}\nsteps: [{id: s, window: {from: '09:00', to: '17:00', default_timezone: Mars/Base}}]",
            "steps[0].window.default_timezone",
            "unknown time zone",
        ),
        (
            "trigger: {event: e}\nsteps: [{id: s, wait_until: {condition: {everyone: true}, timeout: 1d, on_timeout: stay}}]",
            "steps[0].wait_until.on_timeout",
            "exit, continue",
        ),
        ("trigger: {event: e}\nsteps: [{id: s, exit: false}]", "steps[0].exit", "expected true"),
        (
            "trigger: {event: e}\nsteps: [{id: s, window: {days: [], from: '09:00', to: '17:00'}}]",
            "steps[0].window.days",
            "at least one day",
        ),
        (
            "trigger: {event: e}\nsteps: [{id: s, split: [{percent: 100}]}]",
            "steps[0].split[0].steps",
            "missing",
        ),
        (
            "trigger: {broadcast: {segment: s, at: '+1d'}}\nsteps: []",
            "trigger.broadcast.at",
            "ISO 8601",
        ),
    ],
)
def test_bad_journeys(body: str, field: str, expected: str) -> None:
    problem = journey_problem(body)
    assert problem.field == field
    assert expected in problem.message


def test_bad_policies_and_topics() -> None:
    problems = parse_problems(
        """
        policies:
          frequency_caps: [{channel: emails, max: -1, per: 1x}]
          quiet_hours: {from: "21:00", to: "8"}
        topics:
          - {name: news, default: maybe}
          - {name: offers, channels: [email, text, email]}
          - {name: digest, channels: []}
          - {name: tips, channels: email}
        """
    )
    located = {(p.item, p.field): p.message for p in problems}
    assert set(located) == {
        ("policies", "frequency_caps[0].channel"),
        ("policies", "frequency_caps[0].max"),
        ("policies", "frequency_caps[0].per"),
        ("policies", "quiet_hours.to"),
        ("topic 'news'", "default"),
        ("topic 'offers'", "channels[1]"),
        ("topic 'offers'", "channels[2]"),
        ("topic 'digest'", "channels"),
        ("topic 'tips'", "channels"),
    }
    assert "unknown channel 'text'" in located["topic 'offers'", "channels[1]"]
    assert "listed twice" in located["topic 'offers'", "channels[2]"]
    assert "at least one channel" in located["topic 'digest'", "channels"]
    assert "expected a list of channels" in located["topic 'tips'", "channels"]


def test_a_send_on_a_channel_its_topic_does_not_declare(tmp_path: Path) -> None:
    problems = load_problems(
        tmp_path,
        {
            "segments.yml": SEGMENTS,
            "templates.yml": TEMPLATES.replace(
                "{name: product_updates, default: subscribed}",
                "{name: product_updates, channels: [email, push]}",
            ),
            "journeys.yml": """
            journeys:
              - name: onboarding
                trigger: {segment_entered: new_signups}
                steps:
                  - {id: mail, send: {channel: email, template: welcome_email, topic: product_updates}}
                  - {id: text, send: {channel: sms, template: come_back_sms, topic: product_updates}}
            """,
        },
    )
    message = only(problems, "journeys.yml", "journey 'onboarding'", "steps[1].send.channel")
    assert message == (
        "sends on sms but topic 'product_updates' declares channels: email, push; "
        "add the channel to the topic or send on one of those"
    )
    assert len(problems) == 1


def test_segment_needs_exactly_one_of_condition_or_sql() -> None:
    (problem,) = parse_problems("segments: [{name: s, condition: {everyone: true}, sql: select 1}]")
    assert "exactly one of condition" in problem.message


def test_unknown_top_level_keys_unless_ignored() -> None:
    (problem,) = parse_problems("segmnts: []")
    assert (problem.field, "did you mean 'segments'?" in problem.message) == ("segmnts", True)
    assert (
        parse_problems("name: x\nsteps: []\nsegments: []", ignore_keys=("name", "start", "steps"))
        == []
    )


def test_problem_with_a_definition_leaves_it_out_of_the_content() -> None:
    content, problems = parse_definitions(
        yaml.safe_load(
            "segments: [{name: good, condition: {everyone: true}}, {name: bad, condition: {everyone: 1}}]"
        ),
        "f.yml",
    )
    assert [s.name for s in content.segments] == ["good"]
    assert len(problems) == 1


def test_check_content_on_parsed_content() -> None:
    content, problems = parse_definitions(
        yaml.safe_load("journeys: [{name: j, trigger: {segment_entered: x}, steps: []}]"), "f.yml"
    )
    assert problems == []
    (problem,) = check_content(content)
    assert (
        str(problem)
        == "f.yml: journey 'j': trigger.segment_entered: unknown segment 'x' (known: none are defined)"
    )
    assert check_content(content, sql_segments=["x"]) == []


def test_trait_names_and_property_paths_outside_the_allowlist_are_refused() -> None:
    data = {
        "segments": [
            {"name": "quote", "condition": {"attribute": {"name": "pl'an", "eq": "pro"}}},
            {
                "name": "brace",
                "condition": {
                    "performed": {"event": "x", "where": [{"property": "a.{{b}}", "eq": 1}]}
                },
            },
        ]
    }
    _, problems = parse_definitions(data, "content/segments.yml")
    messages = [str(p) for p in problems]
    assert any(
        "segment 'quote'" in m and "condition.attribute.name" in m and "pl'an" in m
        for m in messages
    ), messages
    assert any("segment 'brace'" in m and "where[0].property" in m for m in messages), messages


def test_undeclared_topic_in_a_subscription_condition(tmp_path: Path) -> None:
    """`nudge run` refuses a subscription condition on an undeclared topic; so does validation,
    in segments and in journeys alike."""
    problems = load_problems(
        tmp_path,
        {
            "segments.yml": """
            segments:
              - {name: news_readers, condition: {subscription: {topic: product_update, subscribed: true}}}
            """,
            "templates.yml": TEMPLATES,
            "journeys.yml": """
            journeys:
              - name: onboarding
                trigger: {segment_entered: news_readers}
                entry_filter: {not: {subscription: {topic: offers, subscribed: false}}}
                steps: [{id: hi, send: {channel: sms, template: come_back_sms}}]
            """,
        },
    )
    segment = only(
        problems, "segments.yml", "segment 'news_readers'", "condition.subscription.topic"
    )
    assert "undeclared topic 'product_update' (declared: product_updates)" in segment
    assert "did you mean 'product_updates'?" in segment
    journey = only(
        problems, "journeys.yml", "journey 'onboarding'", "entry_filter.not.subscription.topic"
    )
    assert "undeclared topic 'offers'" in journey and "declare it under topics" in journey


@pytest.mark.slow
@pytest.mark.parametrize("command", [["validate"], ["run", "--as-of", "2026-01-01T00:00:00Z"]])
def test_validate_and_run_both_refuse_an_undeclared_subscription_topic(
    tmp_path: Path, command: list[str]
) -> None:
    content = tmp_path / "content"
    content.mkdir()
    (content / "defs.yml").write_text(
        "segments: [{name: readers, condition: {subscription: {topic: newz, subscribed: true}}}]\n"
        "topics: [{name: news, default: subscribed}]\n"
    )
    env = {**os.environ, "NUDGE_HOME": str(tmp_path / "home"), "NUDGE_CONTENT": str(content)}
    result = subprocess.run(
        [sys.executable, "-m", "nudge.cli", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "defs.yml" in result.stderr and "segment 'readers'" in result.stderr
    assert "condition.subscription.topic" in result.stderr
    assert "undeclared topic 'newz' (declared: news)" in result.stderr


# --- conditions scoped to the entry, keyed to the trigger (docs/journeys-keyed.md) ---

KEYED_JOURNEY = """
journeys:
  - name: cart_recovery
    trigger: {trigger}
    exit_when:
      performed: {{event: order_completed, since: trigger, where: [{{property: cart_id, eq: {{trigger: cart_id}}}}]}}
    steps:
      - {{id: hold, wait: 1h}}
      - {{id: nudge, send: {{channel: email, template: welcome_email}}}}
"""


def test_scoped_conditions_load_in_a_journey_with_an_event_trigger(tmp_path: Path) -> None:
    root = tmp_path / "content"
    root.mkdir()
    (root / "templates.yml").write_text(textwrap.dedent(TEMPLATES))
    journey = KEYED_JOURNEY.format(trigger="{event: {name: checkout_started}}")
    (root / "journeys.yml").write_text(textwrap.dedent(journey))
    content = load_content_dir(root)
    performed = content.journeys[0].exit_when
    assert performed.since == "trigger" and performed.keyed  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("condition", "field"),
    [
        ("{performed: {event: a, since: entry}}", "condition.performed.since"),
        (
            "{not: {performed: {event: a, where: [{property: x, eq: {trigger: x}}]}}}",
            "condition.not.performed.where[0].eq",
        ),
    ],
)
def test_scoped_performed_in_a_segment_is_refused(
    tmp_path: Path, condition: str, field: str
) -> None:
    problems = load_problems(
        tmp_path, {"segments.yml": f"segments:\n  - {{name: s, condition: {condition}}}\n"}
    )
    message = only(problems, "segments.yml", "segment 's'", field)
    assert "allowed only in a journey's conditions" in message


def test_trigger_value_in_a_journey_without_an_event_trigger_is_refused(tmp_path: Path) -> None:
    journey = KEYED_JOURNEY.format(trigger="{segment_entered: new_signups}")
    problems = journey_problems(tmp_path, journey)
    message = only(
        problems, "journeys.yml", "journey 'cart_recovery'", "exit_when.performed.where[0].eq"
    )
    assert "journey 'cart_recovery' has a segment_entered trigger" in message
    assert len(problems) == 1, "since is allowed with any trigger"


def test_trigger_value_in_the_trigger_where_is_refused(tmp_path: Path) -> None:
    journey = KEYED_JOURNEY.format(
        trigger="{event: {name: a, where: [{property: cart_id, ne: {trigger: cart_id}}]}}"
    )
    problems = journey_problems(tmp_path, journey)
    message = only(problems, "journeys.yml", "journey 'cart_recovery'", "trigger.event.where[0].ne")
    assert "compares with literal values" in message


@pytest.mark.parametrize(
    ("condition", "field", "expected"),
    [
        (
            "{performed: {event: a, since: start}}",
            "exit_when.performed.since",
            "unknown since scope 'start'; expected one of trigger, entry, step",
        ),
        (
            "{performed: {event: a, where: [{property: x, in: {trigger: x}}]}}",
            "exit_when.performed.where[0].in",
            "'in' cannot compare with {trigger: ...}",
        ),
        (
            "{attribute: {name: plan, eq: {trigger: plan}}}",
            "exit_when.attribute.eq",
            "allowed only in a `performed` where item",
        ),
        (
            "{performed: {event: a, where: [{property: x, eq: {trigger: 'x..y'}}]}}",
            "exit_when.performed.where[0].eq.trigger",
            "is not a dotted property path",
        ),
    ],
)
def test_bad_scoped_conditions(condition: str, field: str, expected: str) -> None:
    problem = journey_problem(
        "trigger: {event: a}\nexit_when: " + condition + "\nsteps: [{id: w, wait: 1h}]"
    )
    assert problem.field == field
    assert expected in problem.message
