"""The sealed chunk format of page backups: what goes in comes out, and a flipped
byte, a cut, a reordered or a transplanted chunk or a wrong key is refused."""

from __future__ import annotations

import io
import os

import pytest

from atlas.errors import BackupError
from atlas.services import sealing
from atlas.services.sealing import FRAME, HEADER, SealedWriter, read_sealed

DATA = os.urandom(sealing.CHUNK) + b"tail" * 70_000  # three chunks: full, partial, last


def sealed(data: bytes, passphrase: str | None) -> bytes:
    out = io.BytesIO()
    writer = SealedWriter(out, passphrase)
    writer.write(data)
    writer.close()
    return out.getvalue()


def frames(blob: bytes) -> tuple[bytes, list[bytes]]:
    """(file header, each frame with its header) of a sealed file."""
    pos, out = HEADER.size, []
    while pos < len(blob):
        size = FRAME.unpack_from(blob, pos)[0]
        out.append(blob[pos : pos + FRAME.size + size])
        pos += FRAME.size + size
    return blob[: HEADER.size], out


def opened(blob: bytes, passphrase: str | None) -> bytes:
    return b"".join(read_sealed(io.BytesIO(blob), passphrase))


@pytest.mark.parametrize("passphrase", [None, "correct horse"])
def test_round_trip_in_chunks(passphrase: str | None) -> None:
    blob = sealed(DATA, passphrase)
    assert opened(blob, passphrase) == DATA
    assert len(frames(blob)[1]) == 2
    assert sealing.is_encrypted(io.BytesIO(blob)) is bool(passphrase)
    assert opened(sealed(b"", passphrase), passphrase) == b""


def test_encrypted_chunks_hide_the_plaintext() -> None:
    blob = sealed(b"lighthouses " * 1000, "pw")
    assert b"lighthouses" not in blob


def test_wrong_key_or_no_key_is_refused() -> None:
    blob = sealed(DATA, "pw")
    with pytest.raises(BackupError, match="wrong passphrase"):
        opened(blob, "not it")
    with pytest.raises(BackupError, match="passphrase is needed"):
        opened(blob, None)


def test_a_flipped_byte_is_refused() -> None:
    blob = bytearray(sealed(DATA, "pw"))
    blob[HEADER.size + FRAME.size + 100] ^= 1
    with pytest.raises(BackupError, match="chunk 0 fails authentication"):
        opened(bytes(blob), "pw")


def test_a_cut_at_a_chunk_boundary_is_refused() -> None:
    header, parts = frames(sealed(DATA, "pw"))
    with pytest.raises(BackupError, match="truncated"):
        opened(header + parts[0], "pw")
    with pytest.raises(BackupError, match="truncated"):
        opened(header + parts[0][:-10], "pw")


def test_reordered_chunks_are_refused_even_with_renumbered_headers() -> None:
    header, (first, second) = frames(sealed(DATA, "pw"))
    with pytest.raises(BackupError, match="out of order"):
        opened(header + second + first, "pw")
    # an attacker renumbers the frame headers: the index is bound to the ciphertext
    size0, _, last0 = FRAME.unpack_from(first)
    size1, _, last1 = FRAME.unpack_from(second)
    swapped = (
        FRAME.pack(size1, 0, last0) + second[FRAME.size :] + FRAME.pack(size0, 1, last1)
    ) + first[FRAME.size :]
    with pytest.raises(BackupError, match="fails authentication"):
        opened(header + swapped, "pw")


def test_the_last_chunk_flag_cannot_be_forged() -> None:
    header, (first, _second) = frames(sealed(DATA, "pw"))
    size, index, _ = FRAME.unpack_from(first)
    forged = FRAME.pack(size, index, 1) + first[FRAME.size :]
    with pytest.raises(BackupError, match="fails authentication"):
        opened(header + forged, "pw")


def test_a_chunk_from_another_file_is_refused() -> None:
    header_a, (first_a, _) = frames(sealed(DATA, "pw"))
    _, (_, second_b) = frames(sealed(DATA, "pw"))
    with pytest.raises(BackupError, match="chunk 1 fails authentication"):
        opened(header_a + first_a + second_b, "pw")
