"""``python -m tests.crash_driver N reconcile ARGS…``: ``atlas reconcile ARGS…`` exactly as
the command line runs it, but SIGKILLed right after its Nth applied action.

How the crash-safety tests kill a reconcile between any two actions: the reconcile
loop's ``on_action`` seam, driven from here, so production code carries no switch
for it.
"""

from __future__ import annotations

import os
import signal
import sys

from atlas.cli import build_parser
from atlas.commands.reconcile import reconcile
from reconciler import Action


def main(argv: list[str]) -> int:
    remaining = int(argv[0])
    args = build_parser().parse_args(argv[1:])

    def after(_action: Action) -> None:
        nonlocal remaining
        remaining -= 1
        if remaining <= 0:
            os.kill(os.getpid(), signal.SIGKILL)

    return reconcile(args, on_action=after)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
