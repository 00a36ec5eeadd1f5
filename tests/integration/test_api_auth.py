"""``atlas api`` as a real process with bearer tokens and TLS: the 401/403/200 matrix,
tokens never in its logs or metrics, a handshake with a certificate made here, and a
certificate renewed on disk picked up by a new connection while an old keep-alive
connection keeps working."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from atlas.api.tls import CHECK_S
from reconciler.host.probe import HttpxProbe, own_host
from tests.support.feeds import NotifyListener, api_config, write_json
from tests.support.leakcheck import LeakCheck
from tests.support.mailserver import make_cert
from tests.support.monitoring import wait_for
from tests.support.net import free_port
from tests.support.seeding import items, seed

READER = "rdr-3f9c2a7e41d8b0c6"
SCRAPER = "scr-8d1e5b0a9c27f4e3"
TOKENS = [
    {"name": "reader", "scopes": ["read"], "env": "ATLAS_SECRET_API_TOKEN_READER"},
    {"name": "scraper", "scopes": ["metrics"], "env": "ATLAS_SECRET_API_TOKEN_SCRAPER"},
]
ENV = {"ATLAS_SECRET_API_TOKEN_READER": READER, "ATLAS_SECRET_API_TOKEN_SCRAPER": SCRAPER}
START_S = 60.0  # the unit's TimeoutStartSec=
HEALTH_TIMEOUT_S = 30.0  # manifests/base/deployments.yaml: the api's healthCheck timeout


class ApiProcess:
    def __init__(self, tmp_path: Path, extra: dict[str, Any], env: dict[str, str]) -> None:
        db = tmp_path / "atlas.db"
        seed(db, {"a": items("a", 3)}).close()
        self.port = free_port()
        config = write_json(tmp_path / "api.json", {**api_config(db, self.port), **extra})
        self.log = tmp_path / "api.log"
        self.notify = NotifyListener(tmp_path / "notify.sock")
        environ = dict(os.environ, NOTIFY_SOCKET=str(self.notify.path), **env)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "atlas", "api", "--config", str(config)],
                env=environ,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            self.notify.wait_for("READY=1", timeout=START_S)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
        self.notify.close()
        return self.proc.returncode


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ApiProcess]:
    extra = {"auth": {"tokens": TOKENS, "protectMetrics": True}}
    proc = ApiProcess(tmp_path, extra, ENV)
    yield proc
    assert proc.stop() == 0


def _get(client: httpx.Client, path: str, how: str) -> httpx.Response:
    headers = {
        "none": {},
        "wrong": {"Authorization": "Bearer not-a-token-of-ours"},
        "reader": {"Authorization": f"Bearer {READER}"},
        "reader-x": {"X-Auth-Token": READER},
        "scraper": {"Authorization": f"bearer {SCRAPER}"},
    }[how]
    return client.get(path, headers=headers)


MATRIX = {  # path: {how: status}
    "/healthz": {"none": 200, "wrong": 200, "reader": 200, "scraper": 200},
    "/readyz": {"none": 200, "wrong": 200, "reader": 200, "scraper": 200},
    "/metrics": {"none": 401, "wrong": 401, "reader": 403, "scraper": 200},
    "/v1/items": {"none": 401, "wrong": 401, "reader": 200, "reader-x": 200, "scraper": 403},
    "/v1/sources": {"none": 401, "wrong": 401, "reader": 200, "scraper": 403},
    "/v1/openapi.json": {"none": 401, "reader": 200},
    "/v1/nowhere": {"none": 401, "reader": 404},
}


def test_token_matrix_and_no_token_in_logs_or_metrics(api: ApiProcess, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{api.port}"
    with httpx.Client(base_url=url, timeout=HEALTH_TIMEOUT_S) as client:
        for path, row in MATRIX.items():
            for how, status in row.items():
                resp = _get(client, path, how)
                assert resp.status_code == status, (path, how, resp.text)
                if status == 401:
                    assert resp.headers["www-authenticate"] == 'Bearer realm="atlas"'
                    assert resp.json()["error"]["status"] == 401
                if status == 403:
                    assert "lacks the scope" in resp.json()["error"]["message"]
        metrics = _get(client, "/metrics", "scraper").text
    assert 'atlas_api_requests_by_token_total{token="reader"}' in metrics
    assert 'atlas_api_requests_by_token_total{token="scraper"}' in metrics
    api.stop()
    leaks = LeakCheck({"reader": READER, "scraper": SCRAPER})
    leaks.text("/metrics", metrics)
    leaks.file(api.log)
    leaks.file(tmp_path / "api.json")
    leaks.assert_clean()


def test_a_missing_token_value_is_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "atlas.db"
    seed(db, {}).close()
    config = write_json(
        tmp_path / "api.json",
        {**api_config(db, free_port()), "auth": {"tokens": TOKENS[:1], "protectMetrics": False}},
    )
    out = subprocess.run(
        [sys.executable, "-m", "atlas", "api", "--config", str(config)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("ATLAS_SECRET_")},
    )
    assert out.returncode == 1
    assert "ATLAS_SECRET_API_TOKEN_READER" in out.stderr
    assert "Traceback" not in out.stderr


def _der(cert: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(cert.read_text())


def _handshake(port: int, ca: Path | None) -> ssl.SSLSocket:
    """A TLS connection that trusts only ``ca`` (None: any certificate, to look at it)."""
    ctx = ssl.create_default_context(cafile=str(ca) if ca else None)
    if ca is None:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    sock = socket.create_connection(("127.0.0.1", port), timeout=HEALTH_TIMEOUT_S)
    return ctx.wrap_socket(sock, server_hostname="127.0.0.1")


def _request(conn: ssl.SSLSocket, path: str) -> bytes:
    conn.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
        chunk = conn.recv(65536)
        assert chunk, "the server closed the connection"
        data += chunk
    return data


def test_tls_and_a_certificate_renewed_on_disk(tmp_path: Path) -> None:
    live, renewed = tmp_path / "live", tmp_path / "renewed"
    live.mkdir()
    renewed.mkdir()
    first = make_cert(live)
    tls = {"tls": {"certFile": str(first.cert), "keyFile": str(first.key)}}
    api = ApiProcess(tmp_path, tls, {})
    try:
        resp = httpx.get(
            f"https://127.0.0.1:{api.port}/healthz",
            verify=first.client_context(),
            timeout=HEALTH_TIMEOUT_S,
        )
        assert resp.status_code == 200
        # the Deployment's health check accepts the host's own self-signed certificate
        assert HttpxProbe().status(f"https://127.0.0.1:{api.port}/healthz", HEALTH_TIMEOUT_S) == 200
        old = _handshake(api.port, first.cert)
        assert old.getpeercert(binary_form=True) == _der(first.cert)
        assert _request(old, "/healthz").startswith(b"HTTP/1.1 200")
        second = make_cert(renewed)
        second_der = _der(second.cert)
        os.replace(second.key, first.key)  # as certbot's deploy hook would
        os.replace(second.cert, first.cert)

        def new_connection_has_new_cert() -> bool:
            with _handshake(api.port, None) as conn:
                return conn.getpeercert(binary_form=True) == second_der

        wait_for(new_connection_has_new_cert, timeout=CHECK_S + HEALTH_TIMEOUT_S, every=0.2)
        with _handshake(api.port, first.cert) as conn:  # verified: first.cert is the new one
            assert _request(conn, "/healthz").startswith(b"HTTP/1.1 200")
        assert _request(old, "/healthz").startswith(b"HTTP/1.1 200")  # still the old session
        old.close()
    finally:
        assert api.stop() == 0


def test_tls_from_secrets_in_the_env_file(tmp_path: Path) -> None:
    (tmp_path / "made").mkdir()
    cert = make_cert(tmp_path / "made")
    pems = {
        "ATLAS_SECRET_API_CERT": cert.cert.read_text(),
        "ATLAS_SECRET_API_KEY": cert.key.read_text(),
    }
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    tls = {"tls": {"certEnv": "ATLAS_SECRET_API_CERT", "keyEnv": "ATLAS_SECRET_API_KEY"}}
    api = ApiProcess(tmp_path, tls, {**pems, "RUNTIME_DIRECTORY": str(runtime)})
    try:
        with _handshake(api.port, cert.cert) as conn:
            assert conn.getpeercert(binary_form=True) == _der(cert.cert)
            assert _request(conn, "/healthz").startswith(b"HTTP/1.1 200")
        assert list(runtime.iterdir()) == []  # the key's file lived only while it was read
    finally:
        assert api.stop() == 0
    leaks = LeakCheck({"key": cert.key.read_text().strip()})
    leaks.file(api.log)
    leaks.assert_clean()


def test_a_key_that_does_not_match_is_a_clear_error(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    a, b = make_cert(tmp_path / "a"), make_cert(tmp_path / "b")
    db = tmp_path / "atlas.db"
    seed(db, {}).close()
    tls = {"tls": {"certFile": str(a.cert), "keyFile": str(b.key)}}
    config = write_json(tmp_path / "api.json", {**api_config(db, free_port()), **tls})
    out = subprocess.run(
        [sys.executable, "-m", "atlas", "api", "--config", str(config)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert f"cannot load the certificate {a.cert} with the key {b.key}" in out.stderr
    assert "Traceback" not in out.stderr


def test_only_loopback_https_skips_verification() -> None:
    assert own_host("https://127.0.0.1:8080/readyz")
    assert own_host("https://[::1]:8080/readyz")
    assert own_host("https://localhost:8080/readyz")
    assert not own_host("http://127.0.0.1:8080/readyz")
    assert not own_host("https://10.0.0.5:8080/readyz")
    assert not own_host("https://atlas.example.com/readyz")
