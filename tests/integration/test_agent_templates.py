"""``atlas monitor`` as a real process with an annotation that would loop 10^12 times
on the label it gets (issue 12, item 6: the agent ran at 100% CPU, answered 503 and
sent nothing until SIGKILL): the alert goes out, with the fallback text, while the
agent keeps answering, and the error is logged."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.integration.test_agent_process import AgentProcess
from tests.support.monitoring import (
    TestServer,
    component,
    config,
    source_errors,
    source_failing,
    wait_for,
    webhook_channel,
    write_config,
)
from tests.support.net import free_port

pytestmark = pytest.mark.slow

CUBIC = (
    "{% for a in labels.source %}{% for b in labels.source %}{% for c in labels.source %}"
    "{% endfor %}{% endfor %}{% endfor %}"
)


def test_an_annotation_over_its_budget_is_sent_as_a_fallback(
    tmp_path: Path, server: TestServer, server2: TestServer
) -> None:
    source = "s" * 9000
    server.state.metrics = source_errors(**{source: 5})
    cfg = config(
        tmp_path / "data",
        rules=[source_failing(annotations={"summary": CUBIC, "plain": "still here"})],
        channels=[webhook_channel("hook", server2.url + "/hook")],
        components=[component("core", server.url)],
        port=free_port(),
        interval=0.3,
    )
    agent = AgentProcess(write_config(tmp_path / "monitoring.json", cfg), tmp_path / "agent.log")
    try:
        wait_for(agent.healthy, 30, "the agent to answer /healthz")
        # an evaluation every 0.3 s, each annotation within 0.25 s: well inside 15 s
        wait_for(lambda: [r for r in server2.requests if r.status == 200], 15, "a notification")
        [first, *_] = [r for r in server2.requests if r.status == 200]
        annotations = first.json()["alerts"][0]["annotations"]
        assert annotations == {
            "summary": "(template error: rendering took longer than its time budget)",
            "plain": "still here",
        }
        url = f"http://127.0.0.1:{agent.port}/healthz"
        for _ in range(5):  # it keeps answering while the rule keeps firing
            assert httpx.get(url, timeout=2).status_code == 200
            time.sleep(0.3)
    finally:
        agent.stop()
    assert "annotation summary went over its limits" in (tmp_path / "agent.log").read_text()
