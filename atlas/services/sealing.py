"""The sealed file format of page backups: compressed, optionally AES-GCM encrypted,
in chunks that cannot be cut off, reordered, swapped or altered unnoticed.

Layout: ``ATLASBK2`` · a flags byte (1: encrypted, 2: zstd) · a 16-byte
salt · then frames, each ``>IQB`` (body length, chunk index, last-chunk flag) and
its body. A body is the chunk's plaintext compressed (zstd level 1: an order of
magnitude faster than zlib and smaller, so compression keeps up with the disk);
when encrypted, that is sealed with
AES-256-GCM under a key derived by scrypt from the passphrase and the file's own
salt (so each file has its own key and the chunk index can be the nonce), with the
file header and the frame header as associated data: a flipped byte, a reordered or
a swapped chunk fails authentication, and a file cut after any chunk lacks the
last-chunk flag. A plain file's frames carry the same index and flag; its content
is checked by the SHA-256 the backup's manifest records.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from typing import BinaryIO

import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from atlas.errors import BackupError

MAGIC = b"ATLASBK2"
HEADER = struct.Struct(">8sB16s")
FRAME = struct.Struct(">IQB")
CHUNK = 1 << 20
MAX_BODY = CHUNK + (CHUNK >> 3) + 1024  # zstd's worst case and the GCM tag fit in it
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
ENCRYPTED, ZSTD = 1, 2
LEVEL = 1  # fastest: pages compress well enough, and backups must not lag the writer
COMPRESSION = "zstd"


def derive_key(passphrase: str, salt: bytes) -> AESGCM:
    if not passphrase:
        raise BackupError("the backup passphrase is empty")
    kdf = Scrypt(salt=salt, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return AESGCM(kdf.derive(passphrase.encode("utf-8")))


class SealedWriter:
    """Writes a sealed stream to ``fh``: ``write`` any amount, then ``close``."""

    def __init__(self, fh: BinaryIO, passphrase: str | None) -> None:
        salt = os.urandom(16) if passphrase else bytes(16)
        self._header = HEADER.pack(MAGIC, (ENCRYPTED if passphrase else 0) | ZSTD, salt)
        self._zstd = zstandard.ZstdCompressor(level=LEVEL)
        self._aead = derive_key(passphrase, salt) if passphrase else None
        self._fh = fh
        self._buffer = bytearray()
        self._index = 0
        self.plain_bytes = 0
        fh.write(self._header)

    def write(self, data: bytes) -> None:
        self._buffer += data
        self.plain_bytes += len(data)
        while len(self._buffer) > CHUNK:
            self._frame(bytes(self._buffer[:CHUNK]), last=False)
            del self._buffer[:CHUNK]

    def close(self) -> None:
        self._frame(bytes(self._buffer), last=True)
        self._buffer.clear()

    def _frame(self, plain: bytes, last: bool) -> None:
        body = self._zstd.compress(plain)
        if self._aead is not None:
            size = len(body) + 16
            head = FRAME.pack(size, self._index, int(last))
            body = self._aead.encrypt(self._index.to_bytes(12, "big"), body, self._header + head)
        else:
            head = FRAME.pack(len(body), self._index, int(last))
        self._fh.write(head + body)
        self._index += 1


def _open_header(fh: BinaryIO, passphrase: str | None) -> tuple[bytes, int, AESGCM | None]:
    header = fh.read(HEADER.size)
    if len(header) != HEADER.size or not header.startswith(MAGIC):
        raise BackupError("not an Atlas page backup (bad header)")
    _, flags, salt = HEADER.unpack(header)
    if not flags & ENCRYPTED:
        return header, flags, None
    if not passphrase:
        raise BackupError("it is encrypted: the passphrase is needed")
    return header, flags, derive_key(passphrase, salt)


def _decompress(body: bytes, flags: int, index: int) -> bytes:
    if not flags & ZSTD:
        raise BackupError("it names a compression this Atlas does not know")
    try:
        return zstandard.ZstdDecompressor().decompress(body, max_output_size=CHUNK)
    except zstandard.ZstdError as exc:
        raise BackupError(f"chunk {index} does not decompress: {exc}") from exc


def read_sealed(fh: BinaryIO, passphrase: str | None) -> Iterator[bytes]:
    """The plaintext chunks; BackupError for a wrong passphrase or a damaged file."""
    header, flags, aead = _open_header(fh, passphrase)
    index = 0
    while True:
        head = fh.read(FRAME.size)
        if len(head) != FRAME.size:
            raise BackupError(f"truncated: it ends after chunk {index - 1} without its last chunk")
        size, got, last = FRAME.unpack(head)
        if size > MAX_BODY or got != index:
            raise BackupError(f"chunk {index} is damaged or out of order")
        body = fh.read(size)
        if len(body) != size:
            raise BackupError(f"truncated inside chunk {index}")
        if aead is not None:
            try:
                body = aead.decrypt(index.to_bytes(12, "big"), body, header + head)
            except InvalidTag as exc:
                raise BackupError(
                    f"chunk {index} fails authentication: wrong passphrase, or the file "
                    "was altered, reordered or mixed with another"
                ) from exc
        yield _decompress(body, flags, index)
        if last:
            if fh.read(1):
                raise BackupError(f"data after the last chunk ({index})")
            return
        index += 1


def is_encrypted(fh: BinaryIO) -> bool:
    header = fh.read(HEADER.size)
    fh.seek(0)
    return len(header) == HEADER.size and bool(header[8] & ENCRYPTED)
