"""Where the project and its example manifests are, and the example secrets' values."""

from __future__ import annotations

from pathlib import Path

import yaml

from reconciler.secrets.keys import load_key_file

PROJECT = Path(__file__).resolve().parents[2]
EXAMPLE = PROJECT / "manifests"
FIXTURES = PROJECT / "tests" / "fixtures"
FIXTURE_KEYS = FIXTURES / "keys"
RECORDED_SHOW = FIXTURES / "systemctl" / "show-systemd-252.txt"  # systemctl show, recorded
FAKE_EDITOR = FIXTURES / "fake_editor.py"


def example_values(keys: dict[str, Path]) -> dict[str, dict[str, str]]:
    """The decrypted values of the example manifests' secrets: environment → name → value."""
    out: dict[str, dict[str, str]] = {}
    for env, key in keys.items():
        ring = load_key_file(key)
        doc = yaml.safe_load((EXAMPLE / "environments" / env / "secrets.yaml").read_text())
        out[env] = {n: ring.decrypt(env, n, t).reveal() for n, t in doc["spec"]["data"].items()}
    return out
