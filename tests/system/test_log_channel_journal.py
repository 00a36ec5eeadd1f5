"""The log channel under a real PID-1 systemd (tests/support/pid1.py): the agent, in
its rendered, sandboxed atlas-monitoring.service, writes each notification to the
host's journald, where ``journalctl -u atlas-monitoring ATLAS_ALERTNAME=… -o json``
finds it, ``-p crit`` tells critical from warning, and no secret of the unit is in
any entry."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.monitoring import wait_for
from tests.support.systemsite import ENV_FILE, SystemSite

pytestmark = [pytest.mark.systemd, pytest.mark.timeout(900)]

NO_SELF = ("enabled: true", "enabled: false")
ALERTING = "environments/staging/alerting.yaml"
SLACK_END = "username: atlas}"
# two rules true whether the API is up (1) or not (0): one critical, one warning
JOURNAL = """
---
apiVersion: atlas/v1
kind: AlertChannel
metadata: {name: journal}
spec:
  type: log
  log: {file: alerts.jsonl}
---
apiVersion: atlas/v1
kind: AlertRule
metadata: {name: api-answers}
spec:
  metric: atlas_component_up{component="api"}
  op: ">="
  threshold: 0
  severity: critical
  channels: [journal]
  annotations: {summary: "The API answers"}
---
apiVersion: atlas/v1
kind: AlertRule
metadata: {name: api-answers-too}
spec:
  metric: atlas_component_up{component="api"}
  op: ">="
  threshold: 0
  severity: warning
  channels: [journal]
"""


def entries(site: SystemSite, *args: str) -> list[dict[str, Any]]:
    out = site.host.run("journalctl", "-u", "atlas-monitoring", "-o", "json", "--no-pager",
                        *args, check=False).stdout  # fmt: skip
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_the_agent_writes_queryable_entries_to_the_hosts_journal(
    system_site: SystemSite,
) -> None:
    site = system_site
    site.change(ENV_FILE, *NO_SELF)
    site.change(ALERTING, SLACK_END, SLACK_END + "\n" + JOURNAL, "a log channel")
    done = site.reconcile()
    assert done.returncode == 0, done
    # the agent evaluates every 10s (staging's interval) and the rules have no `for`:
    # both fire on its first evaluation
    try:
        found = wait_for(
            lambda: entries(site, "ATLAS_ALERTNAME=api-answers"),
            timeout=120,
            what="the critical alert in the journal",
            every=1.0,
        )
    except AssertionError as exc:
        alerts = site.atlas("alerts", "list", "--scope", "system").stdout
        raise AssertionError(
            f"{exc}\n{alerts}\n{site.host.journal('atlas-monitoring', 60)}"
        ) from None
    e = found[0]
    assert e["_SYSTEMD_UNIT"] == "atlas-monitoring.service" and e["_TRANSPORT"] == "journal"
    assert (e["PRIORITY"], e["ATLAS_SEVERITY"], e["ATLAS_STATUS"]) == ("2", "critical", "firing")
    assert (e["ATLAS_ENVIRONMENT"], e["ATLAS_RULE"]) == ("staging", "api-answers")
    assert json.loads(e["ATLAS_ANNOTATIONS"]) == {"summary": "The API answers"}
    wait_for(lambda: entries(site, "ATLAS_ALERTNAME=api-answers-too"), 60, "the warning", 1.0)
    crit = {x["ATLAS_ALERTNAME"] for x in entries(site, "-p", "crit") if "ATLAS_ALERTNAME" in x}
    assert crit == {"api-answers"}
    # the same notifications, as JSON Lines in the agent's data folder
    lines = site.host.sh("cat /var/lib/atlas/data/alerts.jsonl").splitlines()
    assert {json.loads(x)["alertname"] for x in lines} == {"api-answers", "api-answers-too"}
    # the unit holds the Slack channel's secret; none of its entries shows it
    environ = site.environ_of(site.pid("atlas-monitoring.service"))
    secret = environ["ATLAS_SECRET_SLACK_WEBHOOK_URL"]
    export = site.host.run("journalctl", "-u", "atlas-monitoring", "-o", "export",
                           "--no-pager", check=False).stdout  # fmt: skip
    assert "ATLAS_ALERTNAME=api-answers" in export and secret not in export
