"""Test helpers for the platform: a real HTTP server on 127.0.0.1 with scripted
replies, feed documents (RSS 0.91/1.0/2.0, Atom), config builders, a fake clock."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # before the status line
    chunks: Iterable[bytes] | None = None  # streamed after the headers, connection closes
    chunk_delay_s: float = 0.0


@dataclass(frozen=True)
class Seen:
    path: str
    headers: dict[str, str]


Route = Reply | Callable[["Seen"], Reply]


class FeedServer:
    """Serves ``routes[path]``; records every request. Port 0: the kernel picks."""

    def __init__(self, address: str = "127.0.0.1") -> None:
        self.address = address
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                path = self.path
                seen = Seen(path, {k.lower(): v for k, v in self.headers.items()})
                with outer.lock:
                    outer.seen.append(seen)
                    route = outer.routes.get(path)
                if route is None:
                    reply = Reply(404, b"not found")
                elif callable(route):
                    reply = route(seen)
                else:
                    reply = route
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    if reply.chunks is not None:
                        self.send_header("Connection", "close")
                        self.end_headers()
                        for chunk in reply.chunks:
                            self.wfile.write(chunk)
                            self.wfile.flush()
                            if reply.chunk_delay_s:
                                time.sleep(reply.chunk_delay_s)
                        self.close_connection = True
                        return
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                return

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                return  # a client that hung up early (size limits, timeouts) is expected

        self.httpd = Server((address, 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str) -> str:
        return f"http://{self.address}:{self.port}{path}"

    @property
    def host(self) -> str:
        return f"{self.address}:{self.port}"

    def requests_to(self, path: str) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.path == path]

    def __enter__(self) -> FeedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# ------------------------------------------------------------------ documents


@dataclass(frozen=True)
class Entry:
    title: str
    link: str | None = None
    guid: str | None = None
    text: str = ""
    published: float | None = None


def _date(ts: float | None) -> str:
    return formatdate(ts, usegmt=True) if ts is not None else ""


def rss20(entries: Iterable[Entry], title: str = "Test feed") -> bytes:
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<rss version="2.0"><channel>',
        f"<title>{escape(title)}</title><link>http://example.invalid/</link>",
        "<description>test</description>",
    ]
    for e in entries:
        parts.append("<item>")
        parts.append(f"<title>{escape(e.title)}</title>")
        if e.link:
            parts.append(f"<link>{escape(e.link)}</link>")
        if e.guid:
            parts.append(f'<guid isPermaLink="false">{escape(e.guid)}</guid>')
        if e.text:
            parts.append(f"<description>{escape(e.text)}</description>")
        if e.published is not None:
            parts.append(f"<pubDate>{_date(e.published)}</pubDate>")
        parts.append("</item>")
    parts.append("</channel></rss>")
    return "\n".join(parts).encode()


def rss091(entries: Iterable[Entry]) -> bytes:
    items = "".join(
        f"<item><title>{escape(e.title)}</title><link>{escape(e.link or '')}</link>"
        f"<description>{escape(e.text)}</description></item>"
        for e in entries
    )
    return (
        '<?xml version="1.0"?><rss version="0.91"><channel><title>Old</title>'
        "<link>http://example.invalid/</link><description>d</description>"
        "<language>en</language>" + items + "</channel></rss>"
    ).encode()


def rss10(entries: Iterable[Entry]) -> bytes:
    entries = list(entries)
    seq = "".join(f'<rdf:li resource="{escape(e.link or "")}"/>' for e in entries)
    items = "".join(
        f'<item rdf:about="{escape(e.link or "")}"><title>{escape(e.title)}</title>'
        f"<link>{escape(e.link or '')}</link><description>{escape(e.text)}</description>"
        + (
            f"<dc:date>{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(e.published))}</dc:date>"
            if e.published is not None
            else ""
        )
        + "</item>"
        for e in entries
    )
    return (
        '<?xml version="1.0"?>'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
        ' xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        '<channel rdf:about="http://example.invalid/"><title>RDF</title>'
        "<link>http://example.invalid/</link><description>d</description>"
        f"<items><rdf:Seq>{seq}</rdf:Seq></items></channel>{items}</rdf:RDF>"
    ).encode()


def atom(entries: Iterable[Entry]) -> bytes:
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>Atom test</title>',
        "<id>urn:test:feed</id><updated>2024-01-01T00:00:00Z</updated>",
    ]
    for e in entries:
        parts.append("<entry>")
        parts.append(f"<title>{escape(e.title)}</title>")
        if e.guid:
            parts.append(f"<id>{escape(e.guid)}</id>")
        if e.link:
            parts.append(f'<link href="{escape(e.link)}"/>')
        if e.published is not None:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(e.published))
            parts.append(f"<updated>{stamp}</updated><published>{stamp}</published>")
        if e.text:
            parts.append(f'<content type="html">{escape(e.text)}</content>')
        parts.append("</entry>")
    parts.append("</feed>")
    return "".join(parts).encode()


def entries(prefix: str, n: int, start: float = 1_700_000_000.0) -> list[Entry]:
    return [
        Entry(
            title=f"{prefix} item {i}",
            link=f"http://example.invalid/{prefix}/{i}",
            guid=f"{prefix}-{i}",
            text=f"<p>Body of {prefix} number {i} about <b>lighthouses</b>.</p>",
            published=start + i * 60,
        )
        for i in range(n)
    ]


def huge(total: int, chunk: int = 64 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        size = min(chunk, total - sent)
        yield b"<rss>" + b"x" * (size - 5)
        sent += size


# ------------------------------------------------------------------ configs


def source(name: str, kind: str = "rss", url: str | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "type": kind,
        "title": None,
        "enabled": True,
        "intervalSeconds": 300,
        "url": url,
        "path": None,
        "text": None,
        "timeoutSeconds": None,
        "maxBodyBytes": None,
        "rateLimit": {"requestsPerMinute": 60000, "burst": 1000},
        "labels": {},
        "allowPrivate": False,
        "urlEnv": None,
        "basicAuth": None,
    }
    out.update(extra)
    return out


def envelope(component: str, db_path: Path, data_dir: Path | None = None) -> dict[str, Any]:
    return {
        "configVersion": 1,
        "component": component,
        "environment": "test",
        "version": "0.0.0-test",
        "logLevel": "info",
        "dataDir": str(data_dir or db_path.parent),
        "database": {"path": str(db_path), "busyTimeoutSeconds": 5},
    }


def core_config(
    db_path: Path,
    sources: list[dict[str, Any]],
    metrics_port: int = 1,
    replicas: int = 1,
    **fetch: Any,
) -> dict[str, Any]:
    cfg = envelope("core", db_path)
    cfg.update(
        metrics={"listen": "127.0.0.1", "port": metrics_port},
        replicas=replicas,
        fetch={
            "userAgent": "AtlasTest/1.0 (+https://atlas.invalid/bot)",
            "timeoutSeconds": 2,
            "maxBodyBytes": 1_000_000,
            "maxRedirects": 3,
            "concurrency": 4,
            "allowPrivateNetworks": ["127.0.0.0/8", "::1/128"],  # the test servers
            **fetch,
        },
        sources=sources,
    )
    return cfg


def api_config(db_path: Path, port: int, page_size: int = 50, replicas: int = 1) -> dict[str, Any]:
    cfg = envelope("api", db_path)
    cfg.update(
        listen="127.0.0.1",
        port=port,
        pageSize=page_size,
        replicas=replicas,
        maintenanceFile=str(db_path.parent / "maintenance.json"),
    )
    return cfg


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
    return path


class NotifyListener:
    """An AF_UNIX datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.messages: list[str] = []

    def wait_for(self, field_: str, timeout: float = 20.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(field_ in m.split("\n") for m in self.messages):
                return self.messages
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                break
        raise AssertionError(f"{field_} not received; got {self.messages}")

    def close(self) -> None:
        self.sock.close()
