"""The system scope end to end, under a real PID-1 systemd (tests/support/pid1.py):
Atlas installed from its wheel with Debian's /usr/bin/python3 into /opt/atlas, units in
/etc/systemd/system, DynamicUser= services, state under /var/lib/atlas, secrets in
0600 env files, rollback, drift healed, and the reconciler's own service."""

from __future__ import annotations

import json
import re

import pytest

from tests.support.monitoring import wait_for  # each poll here runs processes: every=0.5
from tests.support.systemsite import COMPONENTS, ENV_FILE, SystemSite

pytestmark = [pytest.mark.systemd, pytest.mark.timeout(900)]

NO_SELF = ("enabled: true", "enabled: false")  # staging's reconciler: off unless a test wants it


def test_first_converge_runs_sandboxed_services_with_their_secrets(
    system_site: SystemSite,
) -> None:
    site = system_site
    site.change(ENV_FILE, *NO_SELF)
    done = site.reconcile()
    assert done.returncode == 0, done
    for unit in COMPONENTS:
        assert site.state(unit) == "active/running", (unit, site.host.journal(unit))
        assert site.uid_of(site.pid(unit)) != 0, f"{unit} runs as root"
        assert site.host.unit_state(unit)["DynamicUser"] == "yes", unit
    assert site.get("http://127.0.0.1:8080/healthz")[0] == 200
    # STATUS=: `systemctl status` says what each service is doing
    status = {u: site.host.unit_state(u)["StatusText"] for u in COMPONENTS}
    assert re.match(r"ingesting 6 sources: \d+ batches stored", status["atlas-core.service"])
    assert "serving on http://127.0.0.1:8080" in status["atlas-api.service"], status
    assert re.fullmatch(
        r"watching \d+ components, \d+ rules; \d+ alert\(s\) firing; last cycle at [\d:]{8}",
        status["atlas-monitoring.service"],
    ), status
    # state under /var/lib/atlas: the reconciler's own, and the services' data folder
    listing = site.host.sh("ls /var/lib/atlas/reconciler /var/lib/atlas/data/")
    assert "state.db" in listing, listing
    # the webhook secret reaches the monitoring agent only through its 0600 env file
    env_file = site.host.sh("stat -c '%a %U' /etc/atlas/monitoring.env").split()
    assert env_file == ["600", "root"]
    environ = site.environ_of(site.pid("atlas-monitoring.service"))
    assert environ.get("ATLAS_SECRET_SLACK_WEBHOOK_URL", "").startswith("https://"), sorted(environ)
    assert "ATLAS_SECRET_SLACK_WEBHOOK_URL" not in site.environ_of(site.pid("atlas-api.service"))

    before = {u: site.pid(u) for u in COMPONENTS}
    site.change(ENV_FILE, "pageSize: 50", "pageSize: 40")
    done = site.reconcile()
    assert done.returncode == 0, done
    after = {u: site.pid(u) for u in COMPONENTS}
    assert after["atlas-api.service"] != before["atlas-api.service"], "the api restarted"
    assert {u: after[u] for u in COMPONENTS if u != "atlas-api.service"} == {
        u: before[u] for u in COMPONENTS if u != "atlas-api.service"
    }, "only the unit whose config changed restarted"


def test_a_failing_revision_is_rolled_back_and_drift_is_healed(system_site: SystemSite) -> None:
    site = system_site
    good = site.change(ENV_FILE, *NO_SELF)
    assert site.reconcile().returncode == 0
    # the api cannot listen on a port it has no right to: it fails, the revision too
    site.change(ENV_FILE, "port: 8080", "port: 80")
    done = site.reconcile()
    assert done.returncode != 0, done
    assert "rolled back" in done.stdout + done.stderr, done
    # the error says why in the API's own words, from its journal, and so does history
    said = done.stdout + done.stderr
    assert "last journal lines of atlas-api.service:" in said, said
    assert "cannot listen on 127.0.0.1:80: Permission denied" in said, said
    assert "Stopped atlas-api.service" not in said, "only the failed run's lines"
    history = site.atlas("history", "--env", "staging", "--scope", "system", "-o", "json")
    assert "cannot listen on 127.0.0.1:80: Permission denied" in history.stdout, history
    assert site.get("http://127.0.0.1:8080/healthz")[0] == 200, "the good revision serves"
    applied = site.status()["applied_revision"]
    assert applied["sha"] == good, ("the good revision is the applied one", applied)

    unit = "/etc/systemd/system/atlas-core.service"
    original = site.host.run("cat", unit).stdout
    site.host.sh(f"echo '# edited by hand' >> {unit}; systemctl stop atlas-monitoring.service")
    site.change(ENV_FILE, "port: 80", "port: 8080")  # back to the good config
    done = site.reconcile()
    assert done.returncode == 0, done
    assert site.host.run("cat", unit).stdout == original
    assert site.state("atlas-monitoring.service") == "active/running"


def test_the_reconciler_bootstraps_its_own_service_and_applies_pushes(
    system_site: SystemSite,
) -> None:
    """`--once` with spec.reconciler.enabled hands over to atlas-reconciler.service
    (no deadlock on the lock it holds); the service then applies what is pushed."""
    site = system_site
    done = site.reconcile(timeout=120)
    assert done.returncode == 0, done
    wait_for(
        lambda: site.state("atlas-reconciler.service") == "active/running",
        60,
        "atlas-reconciler.service running",
        every=0.5,
    )
    pid = site.pid("atlas-reconciler.service")
    assert site.uid_of(pid) == 0, "the reconciler runs as root: it drives systemctl"
    wait_for(
        lambda: site.get("http://127.0.0.1:9110/healthz")[0] == 200,
        60,
        "the reconciler's /healthz",
        every=0.5,
    )
    api = site.pid("atlas-api.service")
    site.change(ENV_FILE, "pageSize: 50", "pageSize: 30")
    wait_for(
        lambda: site.pid("atlas-api.service") not in (api, 0),
        150,
        "the pushed commit applied by the service (1 min poll)",
        every=0.5,
    )
    # its own unit changes: it restarts itself, after recording the run
    site.change(ENV_FILE, "interval: 1m", "interval: 2m")
    wait_for(
        lambda: (
            "--interval 120s"
            in site.host.run("cat", "/etc/systemd/system/atlas-reconciler.service").stdout
            and site.pid("atlas-reconciler.service") not in (pid, 0)
        ),
        150,
        "the reconciler restarted into its new unit",
        every=0.5,
    )
    wait_for(
        lambda: site.get("http://127.0.0.1:9110/healthz")[0] == 200,
        60,
        "the restarted reconciler healthy",
        every=0.5,
    )
    assert site.state("atlas-reconciler.service") == "active/running"
    wait_for(
        lambda: re.fullmatch(
            r"(applied|synced) [0-9a-f]{12} at [\d:]{8}; polling every 120s",
            site.host.unit_state("atlas-reconciler.service")["StatusText"],
        ),
        60,
        "the reconciler's STATUS= after its first cycle",
        every=0.5,
    )

    # `systemctl restart` of the reconciler in the middle of a run: the next one finishes
    def reconciler_status() -> str:
        return site.host.unit_state("atlas-reconciler.service")["StatusText"]

    api = site.pid("atlas-api.service")
    sha = site.change(ENV_FILE, "pageSize: 30", "pageSize: 20")
    site.host.run("systemctl", "reload", "atlas-reconciler.service")  # reconcile now
    wait_for(lambda: reconciler_status().startswith("applying:"), 60, "a run applying", every=0.1)
    restarted = site.host.run("systemctl", "restart", "atlas-reconciler.service", check=False)
    assert restarted.returncode == 0, restarted

    def applied() -> bool:
        return site.status()["applied_revision"]["sha"] == sha

    try:
        wait_for(applied, 150, "the interrupted run's revision applied after the restart", every=1)
    except AssertionError as exc:
        journal = site.host.journal("atlas-reconciler.service", 60)
        raise AssertionError(f"{exc}\n{site.status()}\n{journal}") from None
    assert site.status()["sync"] == "Synced"
    assert site.pid("atlas-api.service") not in (api, 0)
    config = json.loads(site.host.run("cat", "/etc/atlas/api.json").stdout)
    assert config["pageSize"] == 20, config
    assert site.state("atlas-reconciler.service") == "active/running"
