"""The reconciler's exception tree.

ReconcilerError                  everything the reconciler raises on purpose
├── PermanentError               retrying will not help: fix the input
│   ├── ManifestError            one or more manifest problems (carries Problems)
│   ├── SecretsError             missing/unreadable key, wrong key, bad token
│   ├── RenderError              a template failed to render
│   └── UsageError               a command-line argument is wrong
└── TemporaryError               may succeed later (network, busy lock, systemd busy)
    ├── SourceUnavailable        git remote unreachable
    ├── RuntimeUnavailable       systemd manager not reachable
    └── LockBusy                 another reconcile holds the lock

Third-party exceptions are translated at the module boundary with ``raise … from``.
A ``Problem`` prints with its control characters escaped (``printable``): a name or a
file name from a manifests repository cannot drive the terminal that shows it.
"""

from __future__ import annotations

from dataclasses import dataclass


def printable(text: str) -> str:
    """``text`` with what a terminal would act on escaped as Python does: ``\\x1b``,
    ``\\n``, ``\\u202e`` (controls, separators, bidi and other format characters)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with the manifests, located as precisely as we can."""

    file: str
    line: int
    ref: str  # "Kind/name", or "" when the document has no usable kind/name
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        shown = f"{where}: {self.ref}: {self.message}" if self.ref else f"{where}: {self.message}"
        return printable(shown)

    def as_dict(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line, "ref": self.ref, "message": self.message}


class ReconcilerError(Exception):
    """Base of every error the reconciler raises on purpose."""


class PermanentError(ReconcilerError):
    """Retrying will not help until the input changes."""


class TemporaryError(ReconcilerError):
    """May succeed if tried again later."""


class UsageError(PermanentError):
    """A command-line argument or option is wrong."""


class ManifestError(PermanentError):
    """The manifests are invalid; ``problems`` lists every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class SecretsError(PermanentError):
    """A secret cannot be read: missing key, wrong key, corrupted or swapped token."""


class RenderError(PermanentError):
    """A template failed to render."""


class SourceUnavailable(TemporaryError):
    """The git repository cannot be reached or read right now."""


class RuntimeUnavailable(TemporaryError):
    """The systemd manager cannot be reached."""


class LockBusy(TemporaryError):
    """Another reconcile is running."""
