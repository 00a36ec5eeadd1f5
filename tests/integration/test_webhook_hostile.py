"""The reconciler's webhook against hostile requests: a real server on 127.0.0.1.

A replayed delivery (the same X-GitHub-Delivery again, within the window) schedules
nothing; a signature header that is not ASCII is a plain 401, like any wrong one.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from reconciler.watch.deliveries import DeliveryWindow
from reconciler.watch.server import ReconcilerServer, signature
from seams.testing import FakeClock
from tests.support.net import free_port

SECRET = b"hook-secret-for-tests"
BODY = b'{"ref": "refs/heads/main"}'


class Hook:
    def __init__(self) -> None:
        self.pushes: list[str] = []
        self.server = ReconcilerServer(
            "127.0.0.1", free_port(), lambda: b"", lambda: True, self.pushes.append, SECRET
        )
        self.url = f"http://127.0.0.1:{self.server.port}/hooks/git"

    def post(self, delivery: str | None, body: bytes = BODY) -> httpx.Response:
        headers = {"X-Hub-Signature-256": signature(SECRET, body)}
        if delivery is not None:
            headers["X-GitHub-Delivery"] = delivery
        return httpx.post(self.url, content=body, headers=headers, timeout=10)


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    h.server.start()
    yield h
    h.server.stop()


def test_a_replayed_delivery_schedules_nothing(hook: Hook) -> None:
    first = hook.post("72d3162e-cc78-11e3-81ab-4c9367dc0958")
    assert first.status_code == 202 and hook.pushes == ["webhook"]
    for _ in range(3):
        again = hook.post("72d3162e-cc78-11e3-81ab-4c9367dc0958")
        assert again.status_code == 409, again.text
        assert "already received" in again.text
    assert hook.pushes == ["webhook"], "a replay must schedule nothing"
    assert hook.server.replayed == 3
    assert hook.post("8a1c0b52-cc78-11e3-81ab-4c9367dc0958").status_code == 202
    assert len(hook.pushes) == 2


def test_a_wrongly_signed_delivery_does_not_use_up_its_id(hook: Hook) -> None:
    forged = httpx.post(
        hook.url,
        content=BODY,
        headers={"X-Hub-Signature-256": signature(b"wrong", BODY), "X-GitHub-Delivery": "d-1"},
    )
    assert forged.status_code == 401
    assert hook.post("d-1").status_code == 202


def test_an_overlong_delivery_id_is_refused(hook: Hook) -> None:
    reply = hook.post("x" * 500)
    assert reply.status_code == 400 and "X-GitHub-Delivery" in reply.text
    assert hook.pushes == []


def _raw_post(port: int, header: bytes) -> bytes:
    request = (
        b"POST /hooks/git HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + header
        + b"\r\nContent-Length: "
        + str(len(BODY)).encode()
        + b"\r\n\r\n"
        + BODY
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize(
    "header",
    [
        "X-Hub-Signature-256: sha256=é".encode(),
        "X-Atlas-Signature: sha256=\u00ff\u00fe".encode("latin-1"),
        b"X-Atlas-Signature: sha256=\xff" + b"0" * 63,
    ],
)
def test_a_non_ascii_signature_is_a_plain_401(hook: Hook, header: bytes) -> None:
    reply = _raw_post(hook.server.port, header)
    assert reply.startswith((b"HTTP/1.0 401", b"HTTP/1.1 401")), reply
    assert b"signature" in reply
    assert hook.pushes == []
    assert hook.server.refused == 1


def test_the_window_is_bounded_in_size_and_age() -> None:
    clock = FakeClock()
    window = DeliveryWindow(max_size=3, max_age=600.0, clock=clock.monotonic)
    assert window.first("a") and not window.first("a")
    clock.advance(601)
    assert window.first("a"), "an id older than the window is forgotten"
    for name in ("b", "c", "d"):
        assert window.first(name)
    assert len(window) == 3, "the oldest is dropped beyond max_size"
    assert window.first("a"), "the oldest was dropped to keep the window bounded"
