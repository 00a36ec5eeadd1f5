"""The SIGTERM backstop: a process whose threads cannot be cut short still ends within
the deadline, with status 0 and where each thread was on stderr."""

from __future__ import annotations

import subprocess
import sys
import time

from seams.stopping import STOP_DEADLINE_S

STUCK = """
import signal, threading, time
from seams.stopping import arm_deadline
signal.signal(signal.SIGTERM, lambda *_: arm_deadline(1.0))
threading.Thread(target=lambda: time.sleep(3600), name="stuck-fetch").start()
print("ready", flush=True)
time.sleep(3600)
"""


def test_a_stuck_process_ends_with_status_0_within_the_deadline() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", STUCK], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    asked = time.monotonic()
    proc.terminate()
    _, err = proc.communicate(timeout=STOP_DEADLINE_S + 10)
    took = time.monotonic() - asked
    assert proc.returncode == 0, err
    assert 1.0 <= took < STOP_DEADLINE_S + 5, took
    assert "did not stop within 1s" in err
    assert err.count("Thread 0x") >= 2, ("every thread's stack is written", err)
