"""The README's main job: converge the bundled ``development`` environment for real.

1. Validate ``manifests/``.
2. Find a systemd manager: this user's own (``systemctl --user``) if it runs; as root
   on a machine where systemd is installed but not running, a private user manager
   booted as DESIGN.md §5 describes (its folders in /var/lib/atlas-demo, left running
   so the services stay up; ``scripts/demo --stop`` stops it); otherwise explain what
   is missing and print the dry-run plan instead.
3. ``atlas reconcile --once`` the development environment (user scope), then print
   ``atlas status``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from seams.resources import EXAMPLE_MANIFESTS

DEMO_BASE = Path("/var/lib/atlas-demo")
# the bundled development environment, as user units
DEVELOPMENT = ["--repo", str(EXAMPLE_MANIFESTS), "--env", "development", "--scope", "user"]


def atlas(args: list[str], env: dict[str, str] | None = None) -> int:
    print(f"\n$ atlas {' '.join(args)}", flush=True)
    return subprocess.run([sys.executable, "-m", "atlas", *args], env=env, check=False).returncode


def own_user_manager() -> bool:
    try:
        done = subprocess.run(
            ["systemctl", "--user", "show", "-p", "SystemState", "--value"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and done.stdout.strip() in ("running", "degraded")


def private_manager() -> tuple[dict[str, str] | None, str]:
    from atlas.usermanager import ManagerUnavailable, PrivateManager, why_unavailable

    reason = why_unavailable()
    if reason:
        return None, reason
    DEMO_BASE.mkdir(parents=True, exist_ok=True)
    manager = PrivateManager(base=DEMO_BASE)
    if manager.running():
        print(f"Using the private systemd user manager already running in {DEMO_BASE}.")
        return manager.env, ""
    try:
        manager.start()
    except ManagerUnavailable as exc:
        return None, str(exc)
    print(f"Booted a private systemd user manager (folders in {DEMO_BASE}).")
    return manager.env, ""


def stop() -> int:
    from atlas.usermanager import PrivateManager

    if not (DEMO_BASE / "run").exists():
        print("No demo manager to stop.")
        return 0
    PrivateManager(base=DEMO_BASE).stop()
    print(f"Stopped the demo's systemd manager; its files remain in {DEMO_BASE}.")
    return 0


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/demo", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--stop", action="store_true", help="stop the private manager a demo started"
    )
    parser.add_argument("--dry-run", action="store_true", help="only validate and print the plan")
    args = parser.parse_args(argv)
    if args.stop:
        return stop()
    if atlas(["validate", str(EXAMPLE_MANIFESTS)]) != 0:
        return 1
    env: dict[str, str] | None = None
    why = "--dry-run was asked for"
    if not args.dry_run:
        if own_user_manager():
            env, why = dict(os.environ), ""
            print("Using this user's systemd manager (systemctl --user).")
        else:
            env, why = private_manager()
    if env is None:
        print(
            f"\nNot converging for real: {why}.\nAtlas needs a systemd user manager "
            "(a desktop or SSH session with systemd), or root on a machine with systemd "
            "installed, to run its services. Here is the plan it would apply:"
        )
        with tempfile.TemporaryDirectory(prefix="atlas-demo-root-") as root:
            code = atlas(["reconcile", "--dry-run", *DEVELOPMENT, "--root", root, "--no-diff"])
        return 0 if code in (0, 2) else code
    code = atlas(["reconcile", "--once", *DEVELOPMENT], env)
    atlas(["status", "--scope", "user"], env)
    runtime = env.get("XDG_RUNTIME_DIR", "")
    print(
        "\nThe development environment runs as systemd user units. Try:\n"
        "  curl -s http://127.0.0.1:18080/v1/items | head -c 600; echo\n"
        "  curl -s http://127.0.0.1:18080/readyz\n"
        + (
            f"  XDG_RUNTIME_DIR={runtime} systemctl --user status 'atlas-*'\n"
            f"  XDG_CONFIG_HOME={env['XDG_CONFIG_HOME']} XDG_STATE_HOME={env['XDG_STATE_HOME']} "
            f"XDG_RUNTIME_DIR={runtime} .venv/bin/atlas status --scope user\n"
            "  scripts/demo --stop      # stop the private manager and the services\n"
            if env.get("XDG_RUNTIME_DIR", "").startswith(str(DEMO_BASE))
            else "  systemctl --user status 'atlas-*'\n  .venv/bin/atlas status --scope user\n"
        )
    )
    return code


if __name__ == "__main__":
    sys.exit(run())
