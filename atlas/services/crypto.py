"""Encryption of backup files with a passphrase: an scrypt-derived Fernet key over
the file in chunks, so a database of any size streams through bounded memory.

File layout: ``ATLASBK1`` · 16-byte salt · then per chunk a 4-byte big-endian
length and a Fernet token. Each token's plaintext starts with the chunk's index
(8 bytes) and a last-chunk flag (1 byte), so chunks cannot be reordered, dropped
or cut off without decryption failing.
"""

from __future__ import annotations

import base64
import os
import struct
from collections.abc import Iterator
from typing import BinaryIO

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from atlas.errors import BackupError

MAGIC = b"ATLASBK1"
CHUNK = 1 << 20
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1


def derive_key(passphrase: str, salt: bytes) -> Fernet:
    if not passphrase:
        raise BackupError("the backup passphrase is empty")
    kdf = Scrypt(salt=salt, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return Fernet(base64.urlsafe_b64encode(kdf.derive(passphrase.encode("utf-8"))))


def encrypt(src: BinaryIO, dst: BinaryIO, passphrase: str) -> None:
    salt = os.urandom(16)
    fernet = derive_key(passphrase, salt)
    dst.write(MAGIC + salt)
    index = 0
    chunk = src.read(CHUNK)
    while True:
        following = src.read(CHUNK)
        last = not following
        token = fernet.encrypt(struct.pack(">QB", index, int(last)) + chunk)
        dst.write(struct.pack(">I", len(token)) + token)
        if last:
            return
        chunk = following
        index += 1


def decrypt(src: BinaryIO, passphrase: str) -> Iterator[bytes]:
    """The plaintext chunks; BackupError for a wrong passphrase or a damaged file."""
    header = src.read(len(MAGIC) + 16)
    if len(header) != len(MAGIC) + 16 or not header.startswith(MAGIC):
        raise BackupError("not an encrypted Atlas backup")
    fernet = derive_key(passphrase, header[len(MAGIC) :])
    index = 0
    while True:
        size_bytes = src.read(4)
        if len(size_bytes) != 4:
            raise BackupError("encrypted backup is truncated")
        (size,) = struct.unpack(">I", size_bytes)
        token = src.read(size)
        try:
            plain = fernet.decrypt(token)
        except InvalidToken as exc:
            raise BackupError("cannot decrypt the backup: wrong passphrase or damaged") from exc
        got_index, last = struct.unpack(">QB", plain[:9])
        if got_index != index:
            raise BackupError("encrypted backup chunks are out of order")
        yield plain[9:]
        if last:
            if src.read(1):
                raise BackupError("data after the last chunk of the backup")
            return
        index += 1


def is_encrypted(path: os.PathLike[str] | str) -> bool:
    with open(path, "rb") as fh:
        return fh.read(len(MAGIC)) == MAGIC
