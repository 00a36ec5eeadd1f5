"""Content decoding with a cap on every step, so a compression bomb costs at most a
step of memory before the body limit refuses it.

The fetcher asks only for what it can decode this way (``ACCEPT_ENCODING``: gzip and
deflate, the encodings every server has), reads the raw stream and feeds it here;
each ``zlib`` call yields at most ``STEP`` decoded bytes, and the caller counts them
against the body limit as they come. One encoding per response: stacked encodings
(``gzip, gzip``) are what bombs use, not servers, and are refused, as is any
encoding Atlas did not ask for. Errors are ``FetchRejected`` naming the URL.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

from atlas.errors import FetchRejected

STEP = 64 * 1024  # decoded bytes per zlib call at most
ACCEPT_ENCODING = "gzip, deflate"
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
_RAW_DEFLATE = -zlib.MAX_WBITS  # "deflate" without the zlib wrapper, as some servers send


def decoder_for(content_encoding: str, url: str, status: int) -> Decoder:
    """The decoder for a response's ``Content-Encoding``; FetchRejected for one Atlas did
    not ask for or for stacked encodings."""
    names = [n.strip().lower() for n in content_encoding.split(",")]
    names = [n for n in names if n and n != "identity"]
    if len(names) > 1:
        raise FetchRejected(
            f"{url}: Content-Encoding {content_encoding!r} stacks {len(names)} encodings; "
            f"Atlas accepts one of {ACCEPT_ENCODING} (stacked encodings are a "
            "decompression bomb's trick, not a server's)",
            status,
        )
    if not names:
        return Decoder(None, url, status)
    if names[0] not in _WBITS:
        raise FetchRejected(
            f"{url}: Content-Encoding {names[0]!r} is not one Atlas can decode "
            f"(it asked for {ACCEPT_ENCODING})",
            status,
        )
    return Decoder(names[0], url, status)


class Decoder:
    """Decodes one response body incrementally; ``None`` is identity."""

    def __init__(self, encoding: str | None, url: str, status: int) -> None:
        self.encoding = encoding
        self.url = url
        self.status = status
        self._wbits = _WBITS.get(encoding or "", 0)
        self._zlib = zlib.decompressobj(self._wbits) if encoding else None
        self._started = False  # any input decoded yet (for deflate's raw fallback)

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decoded bytes of ``data``, in pieces of at most ``STEP`` bytes."""
        if self._zlib is None:
            if data:
                yield data
            return
        try:
            yield from self._inflate(data)
        except zlib.error as exc:
            raise FetchRejected(
                f"{self.url}: undecodable {self.encoding} body: {exc}", self.status
            ) from exc

    def finish(self) -> bytes:
        """What the decoder still holds at the end of the body (at most a few bytes)."""
        if self._zlib is None:
            return b""
        try:
            return self._zlib.flush()
        except zlib.error as exc:
            raise FetchRejected(
                f"{self.url}: undecodable {self.encoding} body: {exc}", self.status
            ) from exc

    def _inflate(self, data: bytes) -> Iterator[bytes]:
        while True:
            assert self._zlib is not None
            out = self._decompress(data)
            if out:
                yield out
            data = self._zlib.unconsumed_tail
            if self._zlib.eof:
                data = self._zlib.unused_data
                if not data.strip(b"\x00\r\n \t"):
                    return  # trailing padding after the stream ends
                self._next_member()
                continue
            if not data and len(out) < STEP:
                return  # all input taken and no decoded output left inside zlib

    def _decompress(self, data: bytes) -> bytes:
        assert self._zlib is not None
        try:
            out = self._zlib.decompress(data, STEP)
        except zlib.error:
            if self.encoding != "deflate" or self._started:
                raise
            self._wbits = _RAW_DEFLATE  # deflate sent without its zlib wrapper
            self._zlib = zlib.decompressobj(self._wbits)
            out = self._zlib.decompress(data, STEP)
        self._started = True
        return out

    def _next_member(self) -> None:
        """A gzip body may hold several members one after the other; others may not."""
        if self._wbits != _WBITS["gzip"]:
            raise zlib.error("data after the end of the compressed stream")
        self._zlib = zlib.decompressobj(self._wbits)
