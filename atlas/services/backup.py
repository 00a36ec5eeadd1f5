"""Online backups of the content database, their verification, retention, restore.

A backup is taken with SQLite's online backup API (readers and the worker carry
on), into a temporary file in the destination folder; ``PRAGMA integrity_check``
is run on that copy when the policy says ``verify``; with ``encrypt`` it is then
encrypted (``crypto``) and the encrypted file is decrypted again and compared by
hash. Only a finished backup gets its final name (``atlas-<UTC time>.db`` or
``.db.enc``), by an atomic rename, so a killed job never leaves a half backup that
looks whole. Retention keeps the newest ``keepLast`` and drops any older than
``maxAgeSeconds`` — but never the newest one.
"""

from __future__ import annotations

import calendar
import hashlib
import os
import re
import shutil
import sqlite3
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from atlas.errors import BackupError, StorageError
from atlas.services import crypto
from atlas.services.settings import BackupSettings
from atlas.services.snapshot import integrity_check
from seams.fsio import fsync_dir

NAME = re.compile(r"^atlas-(\d{8}T\d{6}(?:\.\d{6})?Z)\.db(\.enc)?\Z")


@dataclass(frozen=True)
class BackupFile:
    path: Path
    taken_at: float
    size: int
    encrypted: bool

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["path"] = str(self.path)
        return out


def _stamp(now: float) -> str:
    micro = round((now % 1) * 1_000_000) % 1_000_000
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{micro:06d}Z"


def _parse_stamp(stamp: str) -> float:
    base, _, rest = stamp.rstrip("Z").partition(".")
    seconds = float(calendar.timegm(time.strptime(base, "%Y%m%dT%H%M%S")))
    return seconds + (int(rest) / 1_000_000 if rest else 0.0)


def list_backups(destination: Path) -> list[BackupFile]:
    """Finished backups in ``destination``, newest first."""
    out = []
    try:
        entries = list(destination.iterdir())
    except FileNotFoundError:
        return []
    for path in entries:
        match = NAME.match(path.name)
        if match and path.is_file():
            out.append(
                BackupFile(
                    path, _parse_stamp(match.group(1)), path.stat().st_size, bool(match.group(2))
                )
            )
    return sorted(out, key=lambda b: b.taken_at, reverse=True)


def _sha256(chunks: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
    return h.hexdigest()


def _file_chunks(path: Path) -> Iterable[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(crypto.CHUNK):
            yield chunk


def make_backup(
    database: Path,
    settings: BackupSettings,
    now: float,
    passphrase: str | None,
    busy_timeout_s: float = 10.0,
) -> BackupFile:
    if not database.exists():
        raise BackupError(f"database {database} does not exist; nothing to back up")
    if settings.encrypt and not passphrase:
        raise BackupError(
            f"backup policy {settings.policy} encrypts, but the passphrase variable "
            f"{settings.encryption_key_env or '(none configured)'} is not set"
        )
    dest = settings.destination
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    name = f"atlas-{_stamp(now)}.db" + (".enc" if settings.encrypt else "")
    plain_tmp = dest / f".{name}.partial"
    enc_tmp = dest / f".{name}.enc-partial"
    try:
        try:
            src = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=busy_timeout_s)
            dst = sqlite3.connect(plain_tmp)
            try:
                src.backup(dst, pages=4096)
                # a self-contained file: no -wal/-shm beside the copy
                dst.execute("PRAGMA journal_mode=DELETE")
            finally:
                dst.close()
                src.close()
        except sqlite3.Error as exc:
            raise StorageError(f"cannot back up {database}: {exc}") from exc
        os.chmod(plain_tmp, 0o600)
        if settings.verify:
            integrity_check(plain_tmp)
        final = dest / name
        if settings.encrypt:
            assert passphrase is not None
            with plain_tmp.open("rb") as src_fh, enc_tmp.open("wb") as dst_fh:
                crypto.encrypt(src_fh, dst_fh, passphrase)
                dst_fh.flush()
                os.fsync(dst_fh.fileno())
            os.chmod(enc_tmp, 0o600)
            if settings.verify:
                with enc_tmp.open("rb") as fh:
                    if _sha256(crypto.decrypt(fh, passphrase)) != _sha256(_file_chunks(plain_tmp)):
                        raise BackupError(f"{name}: decrypted backup differs from the copy")
            os.replace(enc_tmp, final)
        else:
            with plain_tmp.open("rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(plain_tmp, final)
        fsync_dir(dest)
    finally:
        plain_tmp.unlink(missing_ok=True)
        enc_tmp.unlink(missing_ok=True)
    return BackupFile(final, now, final.stat().st_size, settings.encrypt)


def prune(destination: Path, keep_last: int, max_age_s: float | None, now: float) -> list[Path]:
    """Remove backups beyond the newest ``keep_last`` or older than ``max_age_s``."""
    backups = list_backups(destination)
    removed = []
    for i, backup in enumerate(backups):
        if i == 0:
            continue  # the newest stays, whatever its age
        too_many = i >= keep_last
        too_old = max_age_s is not None and now - backup.taken_at > max_age_s
        if too_many or too_old:
            backup.path.unlink(missing_ok=True)
            removed.append(backup.path)
    return removed


def passphrase_for(
    policy: BackupSettings, env: Mapping[str, str], variable: str | None = None
) -> str | None:
    """The passphrase from ``variable`` (default: the policy's encryptionKeyEnv)."""
    name = variable or policy.encryption_key_env
    return env.get(name) if name else None


def restore(backup: Path, target: Path, passphrase: str | None, force: bool = False) -> None:
    """Write ``backup`` (decrypted if needed, verified) to ``target``."""
    if not backup.is_file():
        raise BackupError(f"{backup}: no such backup file")
    if target.exists() and not force:
        raise BackupError(f"{target} exists; stop atlas-core and pass --force to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.restoring")
    try:
        if crypto.is_encrypted(backup):
            if not passphrase:
                raise BackupError(f"{backup} is encrypted: the passphrase is needed")
            with backup.open("rb") as src, tmp.open("wb") as dst:
                for chunk in crypto.decrypt(src, passphrase):
                    dst.write(chunk)
        else:
            shutil.copyfile(backup, tmp)
        integrity_check(tmp)
        for suffix in ("-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
