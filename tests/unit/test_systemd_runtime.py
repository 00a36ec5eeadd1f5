"""The Runtime seam: parsing recorded `systemctl show` output, and what verify makes of it."""

from __future__ import annotations

import logging
from pathlib import Path

from reconciler.host.runtime import Systemctl
from reconciler.render.desired import Probe, UnitSpec
from reconciler.verify import _failure, _running
from seams.systemd import parse_show
from tests.support.examples import RECORDED_SHOW


def states():
    return parse_show(RECORDED_SHOW.read_text())


def test_parse_recorded_show_output() -> None:
    s = states()
    assert set(s) == {"ok.service", "bad.service", "loop.service", "tick.timer", "missing.service"}
    ok = s["ok.service"]
    assert (ok.active_state, ok.sub_state, ok.unit_file_state) == ("active", "running", "enabled")
    assert ok.main_pid == 3962 and ok.running and ok.enabled
    bad = s["bad.service"]
    assert (bad.active_state, bad.result, bad.exec_main_status) == ("failed", "exit-code", 3)
    assert not bad.running
    loop = s["loop.service"]
    assert (loop.sub_state, loop.n_restarts) == ("auto-restart", 2)
    assert s["tick.timer"].sub_state == "waiting" and s["tick.timer"].main_pid == 0
    missing = s["missing.service"]
    assert (
        missing.load_state == "not-found" and missing.unit_file_state == "" and not missing.enabled
    )


def test_verify_reads_the_recorded_states() -> None:
    s = states()
    svc = UnitSpec(
        "ok.service",
        Path("/u/ok.service"),
        "api",
        True,
        True,  # type: ignore[arg-type]
        Probe("http://127.0.0.1:1/readyz", 1, 5, 3),
    )
    timer = UnitSpec("tick.timer", Path("/u/tick.timer"), "services", True, True)  # type: ignore[arg-type]
    assert _running(svc, s["ok.service"]) and _running(timer, s["tick.timer"])
    assert _failure(s["ok.service"], 0) is None
    assert _failure(s["bad.service"], 0) == "failed (result exit-code, exit status 3)"
    assert _failure(s["loop.service"], 0) == "restarting in a loop (2 restarts)"
    assert _failure(s["missing.service"], 0) == "unit is not-found"


def test_systemctl_gets_neither_our_notify_socket_nor_secrets() -> None:
    runtime = Systemctl(
        "user",
        {
            "NOTIFY_SOCKET": "/run/notify",
            "WATCHDOG_USEC": "1",
            "ATLAS_SECRET_X": "s",
            "XDG_RUNTIME_DIR": "/run/user/1",
        },
    )
    assert runtime.env == {"XDG_RUNTIME_DIR": "/run/user/1"}
    assert runtime.base == ["systemctl", "--user"]
    assert Systemctl("system").base == ["systemctl"]


def test_service_logging_keeps_request_urls_out() -> None:
    from atlas.logs import setup

    setup("debug", "test")
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("httpcore").getEffectiveLevel() == logging.WARNING
