import time

import pytest


@pytest.mark.systemd
def test_private_manager_runs_a_unit(systemd_user) -> None:
    unit_dir = systemd_user.config_home / "systemd" / "user"
    unit_dir.mkdir(parents=True)
    (unit_dir / "probe.service").write_text("[Service]\nExecStart=/bin/sleep 300\n")
    systemd_user.systemctl("daemon-reload")
    systemd_user.systemctl("start", "probe.service")
    deadline = time.monotonic() + 10
    while systemd_user.show("probe.service", "ActiveState")["ActiveState"] != "active":
        assert time.monotonic() < deadline, "probe.service never became active"
        time.sleep(0.05)
    assert int(systemd_user.show("probe.service", "MainPID")["MainPID"]) > 0
