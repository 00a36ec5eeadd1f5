"""What a sandboxed unit may see of the host's folders, and how it is given them.

Every Atlas unit runs with ``PrivateTmp=yes`` (and, in the system scope,
``DynamicUser=yes``, which implies it): the unit gets a /tmp and /var/tmp of its own,
so a folder of the host under either is invisible to it, and ``ReadWritePaths=`` on
such a folder fails the unit with ``226/NAMESPACE`` before it runs a line. Here a
folder a unit needs is either listed as it is (``ReadWritePaths=`` punches through
``ProtectSystem=strict`` and ``ProtectHome=read-only``) or, when ``PrivateTmp=`` would
hide it, bound into the unit's namespace (``BindPaths=`` read-write,
``BindReadOnlyPaths=``): the unit sees the same folder at the same path.

Pure: paths in, unit settings out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

# What PrivateTmp= replaces with folders of the unit's own
PRIVATE_TMP = (PurePosixPath("/tmp"), PurePosixPath("/var/tmp"))  # noqa: S108


def hidden_by_private_tmp(path: str | PurePosixPath) -> bool:
    p = PurePosixPath(path)
    return any(p == t or t in p.parents for t in PRIVATE_TMP)


@dataclass(frozen=True)
class Access:
    """The folder settings of one unit."""

    read_write: tuple[str, ...] = ()  # ReadWritePaths=
    bind: tuple[str, ...] = ()  # BindPaths=
    bind_read_only: tuple[str, ...] = ()  # BindReadOnlyPaths=

    def values(self) -> dict[str, list[str]]:
        """For the unit templates (``systemd/macros.j2``)."""
        return {
            "read_write": list(self.read_write),
            "bind": list(self.bind),
            "bind_read_only": list(self.bind_read_only),
        }


def access(*, writes: Iterable[str], reads: Iterable[str]) -> Access:
    """The settings that let a unit write ``writes`` and read ``reads``.

    A folder that is neither hidden nor written needs nothing: ``ProtectSystem=strict``
    and ``ProtectHome=read-only`` leave it readable.
    """
    write = list(dict.fromkeys(str(p) for p in writes))
    read = [p for p in dict.fromkeys(str(p) for p in reads) if p not in write]
    return Access(
        read_write=tuple(p for p in write if not hidden_by_private_tmp(p)),
        bind=tuple(p for p in write if hidden_by_private_tmp(p)),
        bind_read_only=tuple(p for p in read if hidden_by_private_tmp(p)),
    )
