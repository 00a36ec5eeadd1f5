"""The shared seams: the HTTP server's limits, the systemctl show parser, atomic files."""

from __future__ import annotations

import os
import socket
import stat
import threading
import time
from pathlib import Path

import httpx
import pytest

from seams.fsio import TEMP_PREFIX, write_atomic
from seams.httpserver import HttpServer, Limits, Request, Response
from seams.systemd import UnitState, child_env, parse_show
from tests.support.examples import RECORDED_SHOW


@pytest.fixture
def server():
    seen: list[tuple[str | None, str, int]] = []
    release = threading.Event()

    def hello(req: Request) -> Response:
        return Response.json(200, {"path": req.path, "query": req.query})

    def echo(req: Request) -> Response:
        return Response(202, req.body + (req.header("X-TOKEN") or "").encode())

    def slow(req: Request) -> Response:
        release.wait(10)
        return Response.text(200, "late\n")

    def broken(req: Request) -> Response:
        raise RuntimeError("a bug")

    srv = HttpServer(
        "127.0.0.1",
        0,
        {
            ("GET", "/hello"): hello,
            ("POST", "/echo"): echo,
            ("GET", "/slow"): slow,
            ("GET", "/broken"): broken,
        },
        limits=Limits(max_body=16, request_timeout=1.0, max_connections=2),
        observe=lambda route, method, status, _s: seen.append((route, method, status)),
    )
    srv.start()
    srv.seen = seen  # type: ignore[attr-defined]
    srv.release = release  # type: ignore[attr-defined]
    yield srv
    release.set()
    srv.stop()


def url(srv: HttpServer, path: str) -> str:
    return f"http://127.0.0.1:{srv.port}{path}"


def test_routes_methods_bodies_and_errors(server: HttpServer) -> None:
    r = httpx.get(url(server, "/hello?x=1"))
    assert r.status_code == 200 and r.json() == {"path": "/hello", "query": "x=1"}
    r = httpx.post(url(server, "/echo"), content=b"abc", headers={"x-token": "t"})
    assert (r.status_code, r.content) == (202, b"abct")
    assert httpx.post(url(server, "/echo"), content=b"x" * 17).status_code == 413
    r = httpx.get(url(server, "/echo"))
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert httpx.get(url(server, "/nope")).status_code == 404
    assert httpx.get(url(server, "/broken")).status_code == 500
    assert httpx.get(url(server, "/hello")).status_code == 200, "a handler bug stops nothing"
    assert ("/hello", "GET", 200) in server.seen  # type: ignore[attr-defined]
    assert (None, "GET", 404) in server.seen  # type: ignore[attr-defined]


def test_a_silent_connection_is_cut_off_at_the_request_deadline(server: HttpServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as idle:
        idle.settimeout(5)
        started = time.monotonic()
        assert idle.recv(100) == b"", "the server closes a connection that sends nothing"
        assert time.monotonic() - started < 3
    assert httpx.get(url(server, "/hello")).status_code == 200


def test_a_request_trickled_slower_than_the_deadline_is_cut_off(server: HttpServer) -> None:
    """Each byte comes well within the socket timeout; the whole request does not come
    within the request deadline (1 s), so the connection is shut, not kept forever."""
    trickle = socket.create_connection(("127.0.0.1", server.port))
    trickle.settimeout(5)
    started = time.monotonic()
    with trickle:
        try:
            for ch in b"GET /hello HTTP/1.0\r\nX-Padding: slowly\r\n\r\n":
                trickle.sendall(bytes([ch]))
                time.sleep(0.3)
        except OSError:
            pass  # cut off while sending: what we want
        try:
            answer = trickle.recv(100)
        except OSError:
            answer = b""
    assert answer == b"" and time.monotonic() - started < 4
    assert server.cut_off >= 1
    assert httpx.get(url(server, "/hello")).status_code == 200


def test_connections_beyond_the_limit_get_503_at_once(server: HttpServer) -> None:
    busy = [
        threading.Thread(target=httpx.get, args=(url(server, "/slow"),), kwargs={"timeout": 10})
        for _ in range(2)
    ]
    for t in busy:
        t.start()
    deadline = time.monotonic() + 5
    while server.busy_refusals == 0 and time.monotonic() < deadline:
        r = httpx.get(url(server, "/hello"), timeout=5)
        if r.status_code == 503:
            break
        time.sleep(0.05)
    assert server.busy_refusals >= 1
    server.release.set()  # type: ignore[attr-defined]
    for t in busy:
        t.join(10)
    assert httpx.get(url(server, "/hello")).status_code == 200


def test_the_server_listens_on_ipv6_too() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this host")
    srv = HttpServer("::1", 0, {("GET", "/"): lambda r: Response.text(200, "ok\n")})
    srv.start()
    try:
        assert httpx.get(f"http://[::1]:{srv.port}/").text == "ok\n"
    finally:
        srv.stop()


def test_parse_show_by_id_and_by_position() -> None:
    text = RECORDED_SHOW.read_text()
    by_id = parse_show(text)
    assert set(by_id) == {
        "ok.service",
        "bad.service",
        "loop.service",
        "tick.timer",
        "missing.service",
    }
    names = list(by_id)
    aliased = ["alias.service", *names[1:]]  # an alias shows the Id of what it points to
    by_position = parse_show(text, aliased)
    assert by_position["alias.service"] == UnitState(
        **{**vars(by_id[names[0]]), "name": "alias.service"}
    )
    assert parse_show("", ["x.service"]) == {"x.service": UnitState("x.service")}
    ok = by_id["ok.service"]
    assert ok.running and ok.active and ok.enabled and ok.succeeded
    bad = by_id["bad.service"]
    assert not bad.running and not bad.active and not bad.succeeded
    assert not by_id["missing.service"].active


def test_systemctl_gets_neither_our_notify_socket_nor_secrets() -> None:
    env = {"NOTIFY_SOCKET": "/run/n", "WATCHDOG_USEC": "1", "ATLAS_SECRET_X": "s", "HOME": "/h"}
    assert child_env(env) == {"HOME": "/h"}
    assert child_env(None) is None


def test_write_atomic_keeps_or_sets_the_mode(tmp_path: Path) -> None:
    target = tmp_path / "a" / "file"
    write_atomic(target, b"one", 0o640)
    assert target.read_bytes() == b"one" and stat.S_IMODE(target.stat().st_mode) == 0o640
    os.chmod(target, 0o600)
    write_atomic(target, b"two", None)
    assert target.read_bytes() == b"two" and stat.S_IMODE(target.stat().st_mode) == 0o600
    with pytest.raises(FileNotFoundError):
        write_atomic(tmp_path / "missing" / "f", b"x", None, create_parents=False)
    assert not list(tmp_path.rglob(f"{TEMP_PREFIX}*"))
