"""The text of rendered files: Jinja2 templates (StrictUndefined) and quoting.

Unit files come from ``systemd/*.j2``, env files from ``templates/env.j2``. Values put
into a unit's ``ExecStart=`` or an ``EnvironmentFile`` are quoted the way systemd
reads them; hashes (restart and reload triggers) cover parts separated by NUL.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from functools import cache
from typing import Any

import jinja2

from reconciler.errors import RenderError
from seams import envfile
from seams.resources import MESSAGE_TEMPLATE_DIR, SYSTEMD_TEMPLATE_DIR


@cache
def _jinja() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(SYSTEMD_TEMPLATE_DIR), str(MESSAGE_TEMPLATE_DIR)]),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - unit and env files, not HTML
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def template(name: str, **values: Any) -> bytes:
    """Render ``name``; blank lines left by conditional blocks go, one stays before
    each ``[Section]``."""
    try:
        text = _jinja().get_template(name).render(**values)
    except jinja2.TemplateError as exc:
        raise RenderError(f"template {name}: {exc}") from exc
    raw = [line.rstrip() for line in text.splitlines()]
    lines = [
        line
        for i, line in enumerate(raw)
        if line or (i + 1 < len(raw) and raw[i + 1].startswith("[") and i > 0)
    ]
    return ("\n".join(lines) + "\n").encode()


def short_hash(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\x00")
    return h.hexdigest()[:16]


def json_bytes(doc: Mapping[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()


def exec_quote(arg: str) -> str:
    """Quote one argument for a unit file's ExecStart= line."""
    if arg and all(c.isalnum() or c in "/._-=:@%+," for c in arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def exec_line(args: list[str]) -> str:
    return " ".join(exec_quote(a) for a in args)


def env_quote(value: str) -> str:
    """A value for a systemd EnvironmentFile (``seams.envfile``, the reader's pair)."""
    try:
        return envfile.quote(value)
    except envfile.EnvFileError as exc:
        raise RenderError(f"a secret value cannot go into an env file: {exc}") from None


def secret_variable(name: str) -> str:
    return "ATLAS_SECRET_" + name.upper()


def probe_host(listen: str) -> str:
    """Where to reach a server listening on ``listen`` from this host."""
    if listen in ("0.0.0.0", ""):  # noqa: S104 - mapping a wildcard to loopback
        return "127.0.0.1"
    if listen == "::":
        return "[::1]"
    return f"[{listen}]" if ":" in listen and not listen.startswith("[") else listen
