"""A reusable secret-leak detector: search any output for known secret values.

    from tests.support.leakcheck import LeakCheck

    leaks = LeakCheck({"smtp_password": "s3cr3t-…", …})   # name → value (≥ 8 characters)
    leaks.text("atlas plan -o json", stdout)               # strings
    leaks.bytes("state.db", raw)                           # bytes
    leaks.file(path)                                       # one file
    leaks.tree(root, allow=[env_file])                     # every file under root
    leaks.git(repo)                                        # every object git holds + .git files
    leaks.sqlite(db)                                       # every cell, and the raw file
    leaks.assert_clean()                                   # fails listing each finding

Each value is looked for as written and in the encodings an output could carry it
in: JSON and Python string escapes, env-file (backslash) quoting, URL encoding,
base64, hex and UTF-16. ``scan`` is the same search as a plain function.

``git`` reads every object of the repository's object database through ``git
cat-file --batch-all-objects`` — reachable or not, loose or packed (both
compressed, so a byte search of .git would miss them) — and every plain file under
``.git`` (reflogs, index, config, messages).
"""

from __future__ import annotations

import base64
import binascii
import json
import sqlite3
import subprocess
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

MIN_LENGTH = 8  # shorter values would match by chance


@dataclass(frozen=True)
class Finding:
    where: str  # what was searched: a file, a command, an object id
    secret: str  # the secret's name (never its value)
    encoding: str  # how the value appeared
    offset: int

    def __str__(self) -> str:
        return f"{self.where}: secret {self.secret!r} ({self.encoding}) at byte {self.offset}"


def encodings(value: str) -> dict[str, bytes]:
    """The forms of ``value`` to look for, by name."""
    forms = {
        "plain": value,
        "json": json.dumps(value)[1:-1],
        "json-unicode": json.dumps(value, ensure_ascii=False)[1:-1],
        "python-repr": repr(value)[1:-1],
        "env-quoted": value.replace("\\", "\\\\").replace('"', '\\"'),
        "url": urllib.parse.quote(value, safe=""),
        "url-plus": urllib.parse.quote_plus(value),
    }
    out = {name: text.encode("utf-8") for name, text in forms.items()}
    raw = value.encode("utf-8")
    out["base64"] = base64.b64encode(raw).rstrip(b"=")
    out["base64url"] = base64.urlsafe_b64encode(raw).rstrip(b"=")
    out["hex"] = binascii.hexlify(raw)
    out["utf-16-le"] = value.encode("utf-16-le")
    for i, line in enumerate(value.splitlines()):
        if len(line) >= 12 and line != value:
            out[f"line {i + 1}"] = line.encode("utf-8")
    return out


def scan(data: bytes | str, secrets: Mapping[str, str], where: str = "data") -> list[Finding]:
    """Every place in ``data`` where one of ``secrets`` (name → value) appears."""
    blob = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    lower = blob.lower()
    found: list[Finding] = []
    for name, value in secrets.items():
        for encoding, needle in encodings(value).items():
            # hex may be written in either case; everything else must match exactly
            haystack, target = (lower, needle.lower()) if encoding == "hex" else (blob, needle)
            at = haystack.find(target)
            if at >= 0:
                found.append(Finding(where, name, encoding, at))
    return found


@dataclass
class LeakCheck:
    """Collects findings over many outputs; ``assert_clean`` fails listing them."""

    secrets: Mapping[str, str]
    findings: list[Finding] = field(default_factory=list)
    searched: list[str] = field(default_factory=list)  # what was looked at, for messages

    def __post_init__(self) -> None:
        if not self.secrets:
            raise ValueError("no secrets to look for: the check could never fail")
        for name, value in self.secrets.items():
            if len(value) < MIN_LENGTH:
                raise ValueError(f"secret {name!r} is shorter than {MIN_LENGTH} characters")

    def bytes(self, where: str, data: bytes) -> list[Finding]:
        self.searched.append(where)
        found = scan(data, self.secrets, where)
        self.findings.extend(found)
        return found

    def text(self, where: str, text: str) -> list[Finding]:
        return self.bytes(where, text.encode("utf-8", "surrogateescape"))

    def file(self, path: Path) -> list[Finding]:
        return self.bytes(str(path), path.read_bytes())

    def tree(self, root: Path, allow: Iterable[Path] = ()) -> list[Finding]:
        """Every regular file under ``root`` except those in ``allow``."""
        allowed = {Path(p).resolve() for p in allow}
        found: list[Finding] = []
        files = 0
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink() and path.resolve() not in allowed:
                found += self.file(path)
                files += 1
        if files == 0:
            raise AssertionError(f"{root}: no files to search; the check would prove nothing")
        return found

    def git(self, repo: Path) -> list[Finding]:
        """Every object in ``repo``'s object database, and every plain file under .git."""
        batch = subprocess.run(
            ["git", "-C", str(repo), "cat-file", "--batch-all-objects", "--batch"],
            capture_output=True,
            check=True,
        ).stdout
        if not batch:
            raise AssertionError(f"{repo}: no git objects; the check would prove nothing")
        found = self.bytes(f"{repo} (every git object)", batch)
        git_dir = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--absolute-git-dir"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return found + self.tree(Path(git_dir))

    def sqlite(self, path: Path) -> list[Finding]:
        """Every text or blob cell of every table (decoded), and the raw database file."""
        found = self.file(path)
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            for table in tables:
                for row in db.execute(f'SELECT * FROM "{table}"'):
                    for cell in row:
                        if isinstance(cell, str | bytes):
                            found += self.bytes(f"{path} table {table}", _as_bytes(cell))
        finally:
            db.close()
        return found

    def assert_clean(self) -> None:
        if self.findings:
            listing = "\n  ".join(str(f) for f in self.findings)
            raise AssertionError(f"secret values leaked:\n  {listing}")
        if not self.searched:
            raise AssertionError("nothing was searched; the check would prove nothing")


def _as_bytes(cell: str | bytes) -> bytes:
    return cell if isinstance(cell, bytes) else cell.encode("utf-8", "surrogateescape")
