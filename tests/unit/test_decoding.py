"""The capped decoder on its own: what it accepts, that no step yields more than STEP
bytes however the input is split, and that a bomb costs only what is pulled from it."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atlas.core.decoding import STEP, decoder_for
from atlas.errors import FetchRejected

URL = "http://feeds.invalid/feed"


def gzipped(data: bytes) -> bytes:
    obj = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return obj.compress(data) + obj.flush()


ENCODERS = {
    "gzip": gzipped,
    "deflate": zlib.compress,
    "identity": lambda b: b,
}


def decode(encoding: str, data: bytes, cuts: list[int]) -> list[bytes]:
    decoder = decoder_for(encoding, URL, 200)
    pieces: list[bytes] = []
    start = 0
    for cut in [*sorted(c % (len(data) + 1) for c in cuts), len(data)]:
        pieces.extend(decoder.feed(data[start:cut]))
        start = max(start, cut)
    pieces.append(decoder.finish())
    return pieces


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(sorted(ENCODERS)),
    st.binary(max_size=1000).map(lambda b: b * 150),
    st.lists(st.integers(min_value=0), max_size=8),
)
def test_any_split_decodes_to_the_body_in_capped_steps(
    encoding: str, body: bytes, cuts: list[int]
) -> None:
    pieces = decode(encoding, ENCODERS[encoding](body), cuts)
    assert b"".join(pieces) == body
    if encoding != "identity":
        assert max(len(p) for p in pieces) <= STEP


def test_a_bomb_yields_only_what_is_pulled() -> None:
    bomb = gzipped(bytes(16 << 20))  # 16 MiB of zeros in about 16 kB
    steps = decoder_for("gzip", URL, 200).feed(bomb)
    first = [next(steps) for _ in range(3)]
    assert [len(p) for p in first] == [STEP] * 3


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("gzip, gzip", "Content-Encoding 'gzip, gzip' stacks 2 encodings"),
        ("deflate,gzip", "stacks 2 encodings"),
        (
            "br",
            "Content-Encoding 'br' is not one Atlas can decode \\(it asked for gzip, deflate\\)",
        ),
        ("compress", "'compress' is not one Atlas can decode"),
    ],
)
def test_refused_encodings_say_what_is_accepted(header: str, message: str) -> None:
    with pytest.raises(FetchRejected, match=message) as info:
        decoder_for(header, URL, 200)
    assert str(info.value).startswith(URL) and info.value.status == 200


@pytest.mark.parametrize("header", ["", "identity", " Identity ", "GZIP", "x-gzip, identity"])
def test_identity_and_case_are_what_servers_send(header: str) -> None:
    decoder_for(header, URL, 200)


def test_garbage_after_a_deflate_stream_is_refused() -> None:
    decoder = decoder_for("deflate", URL, 200)
    with pytest.raises(FetchRejected, match="undecodable deflate body"):
        list(decoder.feed(zlib.compress(b"feed") + b"more"))
