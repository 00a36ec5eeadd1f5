"""Alert templates are sandboxed *and* bounded (issue 12, item 6): every case of the
issue is refused by ``atlas validate``, and one that only goes over its limits with
real data renders a fallback within its time budget, logged, never a hung agent."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from atlas.alerting import templates
from atlas.alerting.model import AlertPayload, build
from atlas.errors import ConfigError
from atlas.monitoring.rules import Rule
from seams import templating
from tests.unit.test_validate import make_repo, the_problem

NESTED = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"
ISSUE_CASES = {
    "nested range(100000) loops": (NESTED, "range of 100000 items exceeds the limit of 10000"),
    "a huge power": ("{{ 9**(9**9) }}", "9 ** 387420489 is beyond 4096 bits"),
    "a huge repetition": ("{{ 'a'*10**9 }}", "a repetition of 1000000000 items exceeds"),
    "an unclosed tag": ("{{ unclosed", "template error on line 1: unexpected end of template"),
    "an unknown name": ("{{ lables.mount }}", "unknown name 'lables' (a template here sees"),
}
RULE = """\
apiVersion: atlas/v1
kind: AlertRule
metadata: {{name: r}}
spec:
  metric: atlas_dlq_size
  op: ">"
  threshold: 1
  channels: [ops]
  annotations:
    summary: "{text}"
"""
CHANNEL = """\
apiVersion: atlas/v1
kind: AlertChannel
metadata: {{name: ops}}
spec:
  type: webhook
  webhook: {{url: "http://127.0.0.1:9/"}}
  templates:
    subject: "{text}"
"""


def rule(**annotations: str) -> Rule:
    return Rule("r", None, ">", 1.0, 0.0, 0.0, 0.0, "warning", (), {}, annotations)  # type: ignore[arg-type]


@pytest.mark.parametrize("case", ISSUE_CASES)
def test_validate_refuses_the_annotation(tmp_path: Path, case: str) -> None:
    text, expected = ISSUE_CASES[case]
    make_repo(tmp_path, {"base/r.yaml": RULE.format(text=text), "base/c.yaml": CHANNEL.format(
        text="{{ rule }}")})  # fmt: skip
    started = time.monotonic()
    p = the_problem(tmp_path)
    assert time.monotonic() - started < 5  # the trial render is bounded (0.25 s)
    assert (p.file, p.line, p.ref) == ("base/r.yaml", 10, "AlertRule/r")
    assert p.message.startswith("spec.annotations.summary: ") and expected in p.message


@pytest.mark.parametrize("case", ISSUE_CASES)
def test_validate_refuses_the_channel_template(tmp_path: Path, case: str) -> None:
    text, expected = ISSUE_CASES[case]
    if case == "an unknown name":
        text, expected = "{{ rulez }}", "unknown name 'rulez'"
    make_repo(tmp_path, {"base/r.yaml": RULE.format(text="ok"), "base/c.yaml": CHANNEL.format(
        text=text)})  # fmt: skip
    p = the_problem(tmp_path)
    assert (p.file, p.line, p.ref) == ("base/c.yaml", 8, "AlertChannel/ops")
    assert p.message.startswith("spec.templates.subject: ") and expected in p.message


@pytest.mark.parametrize("case", ISSUE_CASES)
def test_the_agent_refuses_them_at_config_load_too(case: str) -> None:
    text, expected = ISSUE_CASES[case]
    started = time.monotonic()
    with pytest.raises(ConfigError) as err:
        templates.check_annotation(text, "rules[0] (r).annotations.summary")
    assert time.monotonic() - started < 5
    assert str(err.value).startswith("rules[0] (r).annotations.summary: ")
    assert expected in str(err.value)


def test_a_template_over_budget_with_real_data_renders_a_fallback_in_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # passes validation (no labels there); with a long label it would loop 10^12 times
    text = (
        "{% for a in labels.path %}{% for b in labels.path %}{% for c in labels.path %}"
        "{% endfor %}{% endfor %}{% endfor %}"
    )
    templates.check_annotation(text, "w")
    budget = templates.ANNOTATION_LIMITS.time_s
    started = time.monotonic()
    with caplog.at_level(logging.ERROR):
        out = templates.render_annotations(rule(summary=text), {"path": "x" * 9000}, 1.0)
    assert time.monotonic() - started < budget + 1.0
    assert out == {"summary": "(template error: rendering took longer than its time budget)"}
    assert "rule r: annotation summary went over its limits" in caplog.text


def test_output_is_capped() -> None:
    out = templates.render_annotations(rule(s="{{ labels.a ~ labels.a }}"), {"a": "y" * 9000}, 1.0)
    assert out == {"s": "(template error: output longer than 16384 characters)"}


def test_a_message_override_over_its_limits_falls_back_to_the_default(
    caplog: pytest.LogCaptureFixture,
) -> None:
    alert = AlertPayload("firing", {"alertname": "r", "p": "x" * 9000}, {}, 0.0, None, "0" * 16,
                         1.0, "http://atlas.invalid")  # fmt: skip
    n = build("ops", "r", [alert], external_url="http://a.invalid", environment="e", now=0)
    text = (
        "{% for a in alerts[0].labels.p %}{% for b in alerts[0].labels.p %}"
        "{% for c in alerts[0].labels.p %}{% endfor %}{% endfor %}{% endfor %}"
    )
    started = time.monotonic()
    with caplog.at_level(logging.ERROR):
        subject = templates.render_message("subject", n, {"subject": text})
    assert time.monotonic() - started < templates.MESSAGE_LIMITS.time_s + 1.0
    assert "r" in subject and "template 'subject' failed" in caplog.text


def test_the_plan_time_sample_has_every_name_the_agent_gives() -> None:
    alert = AlertPayload("firing", {"alertname": "r"}, {}, 0.0, None, "0" * 16, 1.0, "u")
    n = build("ops", "r", [alert], external_url="http://a.invalid", environment="e", now=0)
    real = templates._context(n)
    sample = templating.message_sample()
    assert set(real) == set(sample) == templating.MESSAGE_NAMES
    assert set(real["alerts"][0]) == set(sample["alerts"][0])


@pytest.mark.parametrize(
    "text",
    [
        "{{ ('a'*60000)|replace('', 'b'*60000) }}",
        "{{ ('a'*60000).join('b'*60000) }}",
        "{{ 'x'|center(1000000000) }}",
        "{{ '%0999999999d' % 1 }}",
        "{{ '{:>999999999}'.format(1) }}",
        "{% set ns = namespace(s='a') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
        "{% endfor %}",
        "{% macro d(s, n) %}{{ d(s ~ s, n - 1) if n else s|length }}{% endmacro %}{{ d('a', 40) }}",
        "{{ lipsum(100000) }}",
    ],
)
def test_other_ways_to_grow_a_value_are_refused_quickly(text: str) -> None:
    started = time.monotonic()
    out = templates.render_annotations(rule(s=text), {}, 1.0)
    assert out["s"].startswith("(template error: ")
    assert time.monotonic() - started < templates.ANNOTATION_LIMITS.time_s + 1.0


def test_ordinary_templates_render_as_before() -> None:
    text = "Disk {{ labels.mount }} is {{ value | round(1) }}% full ({{ '%5.1f' % value }})"
    out = templates.render_annotations(rule(s=text), {"mount": "/"}, 93.25)
    assert out == {"s": "Disk / is 93.2% full ( 93.2)"}
