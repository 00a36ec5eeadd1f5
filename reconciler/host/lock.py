"""One reconcile at a time: the exclusive, holder-naming lock of ``seams.pidlock`` on
``<state>/reconciler/lock`` (a restore of the content database takes it too)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from reconciler.errors import LockBusy
from seams import pidlock


@contextmanager
def reconcile_lock(
    path: Path, wait: float = 0.0, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold the lock; wait up to ``wait`` seconds for it, then raise LockBusy."""

    def tell(who: str) -> None:
        if on_wait is not None:
            on_wait(f"waiting for the reconcile lock held by {who}")

    try:
        with pidlock.held(path, wait, tell):
            yield
    except pidlock.Busy as exc:
        raise LockBusy(
            f"another reconcile ({exc.holder}) holds {path}; it was left alone. "
            "Try again when it is done, or pass --wait SECONDS"
        ) from None
