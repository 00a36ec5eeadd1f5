"""What a command line says to converge to, with the gaps filled from the last reconcile."""

from __future__ import annotations

import pytest

from reconciler import TargetArgs, UsageError
from reconciler.pipeline import Target

LAST = {"repo": "/srv/ops", "ref": "release", "path": "deploy", "environment": "staging"}

CASES = [
    ("everything given", TargetArgs("/r", "main", "m", "dev"), LAST, Target("/r", "main", "m", "dev")),
    ("nothing given: the last target", TargetArgs(), LAST, Target("/srv/ops", "release", "deploy", "staging")),
    ("another repo: not the last one's ref", TargetArgs(repo="/other"), LAST,
     Target("/other", None, "deploy", "staging")),
    ("another environment, same source", TargetArgs(environment="prod"), LAST,
     Target("/srv/ops", "release", "deploy", "prod")),
    ("a first reconcile: this folder, its HEAD", TargetArgs(environment="dev"), {},
     Target(".", None, ".", "dev")),
]  # fmt: skip


@pytest.mark.parametrize(("case", "args", "last", "expected"), CASES, ids=[c[0] for c in CASES])
def test_resolve(case: str, args: TargetArgs, last: dict[str, str], expected: Target) -> None:
    assert args.resolve(last) == expected, case


def test_an_environment_is_needed_the_first_time() -> None:
    with pytest.raises(UsageError, match="--env is required"):
        TargetArgs(repo="/r").resolve({})
