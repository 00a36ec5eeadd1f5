"""The README's main job: run Atlas on the bundled example manifests.

Validates ``manifests/`` and prints the dry-run plan of the ``development``
environment against an empty root (nothing on this host is changed).
"""

from __future__ import annotations

import sys
import tempfile

from atlas.cli import EXIT_CHANGES, EXIT_OK, main
from reconciler.resources import EXAMPLE_MANIFESTS


def run() -> int:
    print(f"$ atlas validate {EXAMPLE_MANIFESTS}", flush=True)
    if main(["validate", str(EXAMPLE_MANIFESTS)]) != EXIT_OK:
        return 1
    with tempfile.TemporaryDirectory(prefix="atlas-demo-root-") as root:
        args = [
            "reconcile",
            "--dry-run",
            "--repo",
            str(EXAMPLE_MANIFESTS),
            "--env",
            "development",
            "--scope",
            "user",
            "--root",
            root,
        ]
        print(f"\n$ atlas {' '.join(args)}", flush=True)
        code = main(args)
    return EXIT_OK if code in (EXIT_OK, EXIT_CHANGES) else code


if __name__ == "__main__":
    sys.exit(run())
