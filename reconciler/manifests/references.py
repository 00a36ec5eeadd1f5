"""What no schema can check, for the manifests of one environment.

* Every environment has one Environment document, named after it, and at most the one
  Secrets document its ``spec.secrets`` names.
* References resolve: an AlertRule's channels exist; a secret named anywhere
  (``secret_refs``: the one list of the fields that name secrets) is in the
  environment's Secrets; a file Source's path stays inside the repository.
* One Deployment per component (the services job: one replica, no HTTP check), at
  most one BackupPolicy, no two components on one port, settings within their ranges.

One checker per kind (``CHECKS``); each appends located Problems.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.errors import Problem
from reconciler.manifests import ranges
from reconciler.manifests.load import Limits, PathKey
from reconciler.manifests.overlay import Manifest, field_name
from reconciler.manifests.schema import Values, default_of
from reconciler.manifests.selectors import selector_problem
from reconciler.manifests.sourceurls import allowed_networks, url_problems
from seams import templating
from seams.addresses import IPNetwork

CHANNEL_BLOCKS = ("email", "webhook", "slack", "log")
# (section, key) of every port an Environment sets; defaults from its schema
PORT_FIELDS = (("api", "port"), ("core", "metricsPort"), ("monitoring", "metricsPort"),
               ("reconciler", "metricsPort"))  # fmt: skip


def secret_refs(m: Manifest) -> Iterator[tuple[PathKey, str]]:
    """(where, secret name) of every secret ``m`` refers to."""
    spec = m.spec
    if m.kind == "AlertChannel":
        yield from _channel_secret_refs(spec)
    elif m.kind == "BackupPolicy" and spec.get("encrypt"):
        value = spec.get("encryptionKeySecret")
        if isinstance(value, str):
            yield ("spec", "encryptionKeySecret"), value
    elif m.kind == "Source":
        yield from _source_secret_refs(spec)
    elif m.kind == "Environment":
        reconciler = spec.get("reconciler")
        value = reconciler.get("webhookSecret") if isinstance(reconciler, dict) else None
        if isinstance(value, str):
            yield ("spec", "reconciler", "webhookSecret"), value
        yield from _api_secret_refs(spec.get("api"))


def _api_secret_refs(api: Any) -> Iterator[tuple[PathKey, str]]:
    """spec.api.auth.tokens[*].secret and spec.api.tls.certSecret/keySecret."""
    if not isinstance(api, dict):
        return
    auth = api.get("auth")
    tokens = auth.get("tokens") if isinstance(auth, dict) else None
    for n, token in enumerate(tokens if isinstance(tokens, list) else []):
        if isinstance(token, dict) and isinstance(token.get("secret"), str):
            yield ("spec", "api", "auth", "tokens", n, "secret"), token["secret"]
    tls = api.get("tls")
    for key in ("certSecret", "keySecret"):
        if isinstance(tls, dict) and isinstance(tls.get(key), str):
            yield ("spec", "api", "tls", key), tls[key]


def _channel_secret_refs(spec: dict[str, Any]) -> Iterator[tuple[PathKey, str]]:
    for block in CHANNEL_BLOCKS:
        settings = spec.get(block)
        if isinstance(settings, dict):
            for key, value in settings.items():
                if key.endswith("Secret") and isinstance(value, str):
                    yield ("spec", block, key), value


def _source_secret_refs(spec: dict[str, Any]) -> Iterator[tuple[PathKey, str]]:
    if isinstance(spec.get("urlSecret"), str):
        yield ("spec", "urlSecret"), spec["urlSecret"]
    auth = spec.get("basicAuth")
    if isinstance(auth, dict):
        for key in ("usernameSecret", "passwordSecret"):
            if isinstance(auth.get(key), str):
                yield ("spec", "basicAuth", key), auth[key]


def referenced_secrets(manifests: Iterable[Manifest]) -> dict[str, str]:
    """Secret name → the Kind/name that first refers to it."""
    refs: dict[str, str] = {}
    for m in manifests:
        for _path, name in secret_refs(m):
            refs.setdefault(name, m.ref)
    return refs


@dataclass
class _Context:
    root: Path
    env: str
    limits: Limits
    every: list[Manifest]
    names: dict[str, set[str]]
    problems: list[Problem] = field(default_factory=list)
    secret_names: set[str] | None = None  # None: the environment has no Secrets document
    components: dict[str, Manifest] = field(default_factory=dict)
    allowed_networks: tuple[IPNetwork, ...] = ()  # spec.sources.allowPrivateNetworks

    def add(self, m: Manifest, path: PathKey, message: str) -> None:
        self.problems.append(m.problem(path, message))

    def need_secret(self, m: Manifest, path: PathKey, secret: str) -> None:
        where = field_name(path)
        if self.secret_names is None:
            self.add(
                m,
                path,
                f"{where}: refers to secret {secret!r} but environment {self.env!r} has no "
                "Secrets document (set spec.secrets of its Environment)",
            )
        elif secret not in self.secret_names:
            known = ", ".join(sorted(self.secret_names)) or "none"
            self.add(
                m,
                path,
                f"{where}: no secret named {secret!r} in environment {self.env!r} "
                f"(its secrets: {known})",
            )


# --------------------------------------------------------------------------- per kind


def _alert_rule(ctx: _Context, m: Manifest) -> None:
    channels = ctx.names.get("AlertChannel", set())
    for i, channel in enumerate(m.spec.get("channels", [])):
        if channel not in channels:
            known = ", ".join(sorted(channels)) or "none"
            ctx.add(
                m,
                ("spec", "channels", i),
                f"spec.channels[{i}]: no AlertChannel named {channel!r} (known: {known})",
            )
    bad = selector_problem(m.spec.get("metric", ""))
    if bad:
        ctx.add(m, ("spec", "metric"), f"spec.metric: {bad}")
    for key, text in (m.spec.get("annotations") or {}).items():
        bad = templating.annotation_problem(text) if isinstance(text, str) else None
        if bad:
            ctx.add(m, ("spec", "annotations", key), f"spec.annotations.{key}: {bad}")


def _alert_channel(ctx: _Context, m: Manifest) -> None:
    _secrets_of(ctx, m)
    for key, text in (m.spec.get("templates") or {}).items():
        if not isinstance(text, str):
            continue
        bad = templating.message_problem(text, html=key == "html")
        if bad:
            ctx.add(m, ("spec", "templates", key), f"spec.templates.{key}: {bad}")


def _secrets_of(ctx: _Context, m: Manifest) -> None:
    for path, secret in secret_refs(m):
        ctx.need_secret(m, path, secret)


def _source(ctx: _Context, m: Manifest) -> None:
    _secrets_of(ctx, m)
    for path, message in url_problems(m.spec, ctx.allowed_networks):
        ctx.add(m, path, message)
    if m.spec.get("type") != "file":
        return
    rel = m.spec.get("path", "")
    target = (ctx.root / rel).resolve()
    try:
        target.relative_to(ctx.root.resolve())
    except ValueError:
        ctx.add(m, ("spec", "path"), f"spec.path: {rel!r} points outside the repository")
        return
    if not target.is_file():
        ctx.add(m, ("spec", "path"), f"spec.path: no file {rel!r} in the repository")
        return
    size = target.stat().st_size
    if size > ctx.limits.max_file_bytes:
        ctx.add(
            m,
            ("spec", "path"),
            f"spec.path: {rel!r} is {size} bytes; the limit is {ctx.limits.max_file_bytes}",
        )


def _strategy(ctx: _Context, m: Manifest) -> None:
    strategy = m.spec.get("strategy", {}).get("type")
    if strategy == "canary":
        ctx.add(
            m,
            ("spec", "strategy", "type"),
            "spec.strategy.type: canary is not implemented yet: use blueGreen, rolling or recreate",
        )
    elif strategy == "blueGreen" and m.spec["component"] != "api":
        ctx.add(
            m,
            ("spec", "strategy", "type"),
            f"spec.strategy.type: blueGreen needs a component that listens on a shared port "
            f"(api), not {m.spec['component']}: use rolling or recreate",
        )


def _deployment(ctx: _Context, m: Manifest) -> None:
    spec = m.spec
    component = spec["component"]
    if component in ctx.components:
        first = ctx.components[component]
        ctx.add(
            m,
            ("spec", "component"),
            f"spec.component: a second Deployment of {component!r} "
            f"(first: {first.ref} at {first.file}:{first.line})",
        )
    ctx.components[component] = m
    _strategy(ctx, m)
    if component != "services":
        return
    if spec.get("replicas", 1) != 1:
        ctx.add(
            m,
            ("spec", "replicas"),
            "spec.replicas: the services component runs as one scheduled job; expected 1",
        )
    if "http" in spec.get("healthCheck", {}):
        ctx.add(
            m,
            ("spec", "healthCheck", "http"),
            "spec.healthCheck.http: the services component is a scheduled job with no "
            "HTTP endpoint",
        )


CHECKS: dict[str, Callable[[_Context, Manifest], None]] = {
    "AlertRule": _alert_rule,
    "AlertChannel": _alert_channel,
    "BackupPolicy": _secrets_of,
    "Environment": _secrets_of,
    "Source": _source,
    "Deployment": _deployment,
}


# --------------------------------------------------------------------------- per environment


def _environment_documents(ctx: _Context) -> None:
    envs = [m for m in ctx.every if m.kind == "Environment"]
    if not envs:
        ctx.problems.append(
            Problem(
                f"environments/{ctx.env}",
                0,
                "",
                f"no Environment document: expected one named {ctx.env!r} in "
                f"environments/{ctx.env}/",
            )
        )
    for m in envs:
        if m.name != ctx.env:
            ctx.add(
                m,
                ("metadata", "name"),
                f"the Environment in environments/{ctx.env}/ must be named {ctx.env!r}",
            )


def _secrets_document(ctx: _Context) -> set[str] | None:
    """The names in the Secrets document the Environment names (found even when the
    Environment has other problems, so a bad port does not also produce "no Secrets
    document" for every secret reference); unused Secrets documents are problems."""
    named = next((m for m in ctx.every if m.kind == "Environment" and m.name == ctx.env), None)
    wanted = named.spec.get("secrets") if named else None
    doc_name = wanted if isinstance(wanted, str) else None
    docs = [m for m in ctx.every if m.kind == "Secrets"]
    names: set[str] | None = None
    if doc_name and named is not None:
        doc = next((m for m in docs if m.name == doc_name), None)
        if doc is None:
            ctx.add(
                named,
                ("spec", "secrets"),
                f"spec.secrets: no Secrets document named {doc_name!r} in environments/{ctx.env}/",
            )
        else:
            data = doc.spec.get("data")
            names = set(data) if isinstance(data, dict) else set()
    for m in docs:
        if m.name != doc_name:
            ctx.add(
                m,
                (),
                f"this Secrets document is not used: the Environment's spec.secrets names "
                f"{doc_name!r}"
                if doc_name
                else "this Secrets document is not used: "
                "set spec.secrets of the Environment to its name",
            )
    return names


def _ports(spec: dict[str, Any]) -> list[tuple[str, str, int, bool]]:
    """(section, key, port, set explicitly) of every port of an Environment spec."""
    out = []
    for section, key in PORT_FIELDS:
        block = spec.get(section, {})
        explicit = key in block
        port = block[key] if explicit else default_of("Environment", f"spec.{section}.{key}")
        out.append((section, key, port, explicit))
    return out


def _port_problems(environment: Manifest) -> list[Problem]:
    """Two components on one port: reported at the port that was set explicitly."""
    seen: dict[int, tuple[str, bool, PathKey]] = {}
    problems = []
    for section, key, port, explicit in _ports(environment.spec):
        here = (f"spec.{section}.{key}", explicit, ("spec", section, key))
        if port in seen:
            first = seen[port]
            at, other = (here, first) if here[1] or not first[1] else (first, here)
            other_name = other[0] + ("" if other[1] else f" (default {port})")
            problems.append(
                environment.problem(
                    at[2] if at[1] else ("spec",),
                    f"{at[0]}: port {port} is already used by {other_name}",
                )
            )
        seen[port] = here
    return problems


def _replica_port_problems(environment: Manifest, core: Manifest) -> list[Problem]:
    """Core replica N serves metrics on metricsPort + N - 1: that range must be free."""
    replicas = core.spec.get("replicas", 1)
    ports = _ports(environment.spec)
    base = next(port for section, _, port, _ in ports if section == "core")
    taken = {port: f"spec.{section}.{key}" for section, key, port, _ in ports if section != "core"}
    for port in range(base + 1, base + replicas):
        if port in taken:
            return [
                core.problem(
                    ("spec", "replicas"),
                    f"spec.replicas: {replicas} core replicas serve metrics on ports "
                    f"{base}-{base + replicas - 1}, but {port} is {taken[port]} of "
                    f"Environment/{environment.name}",
                )
            ]
    return []


def _preview_port_problems(environment: Manifest, api: Manifest) -> list[Problem]:
    """blueGreen: replica n of 1..2N also listens on previewPort + n - 1."""
    bg = api.spec.get("strategy", {}).get("blueGreen")
    if api.spec.get("strategy", {}).get("type") != "blueGreen" or not isinstance(bg, dict):
        return []
    base, count = bg["previewPort"], 2 * api.spec.get("replicas", 1)
    taken = {port: f"spec.{section}.{key}" for section, key, port, _ in _ports(environment.spec)}
    for port in range(base, base + count):
        if port in taken or port > 65535:
            what = f"{taken[port]} of Environment/{environment.name}" if port in taken else "65535"
            return [
                api.problem(
                    ("spec", "strategy", "blueGreen", "previewPort"),
                    f"spec.strategy.blueGreen.previewPort: {count} replicas (old and new) "
                    f"listen on preview ports {base}-{base + count - 1}, but {port} is "
                    f"{'beyond ' if port > 65535 else ''}{what}",
                )
            ]
    return []


def _environment_settings(ctx: _Context, valid: list[Manifest]) -> None:
    backups = [m for m in valid if m.kind == "BackupPolicy"]
    for extra in backups[1:]:
        ctx.add(extra, (), f"a second BackupPolicy (first: {backups[0].ref}); expected at most one")
    environment = next((m for m in valid if m.kind == "Environment"), None)
    if environment is None:
        return
    ctx.problems.extend(_port_problems(environment))
    core = ctx.components.get("core")
    if core is not None:
        ctx.problems.extend(_replica_port_problems(environment, core))
    api = ctx.components.get("api")
    if api is not None:
        ctx.problems.extend(_preview_port_problems(environment, api))
    ctx.problems.extend(
        environment.problem(path, message) for path, message in ranges.problems(environment.spec)
    )


def reference_problems(
    root: Path, env: str, every: list[Manifest], valid: list[Manifest], limits: Limits
) -> list[Problem]:
    """Problems of ``every`` manifest of ``env`` that the per-document checks cannot see;
    ``valid`` are those that passed their schema (only they are checked in detail)."""
    names: dict[str, set[str]] = {}
    for m in every:
        names.setdefault(m.kind, set()).add(m.name)
    ctx = _Context(root, env, limits, every, names)
    _environment_documents(ctx)
    ctx.secret_names = _secrets_document(ctx)
    environment = next((m for m in every if m.kind == "Environment" and m.name == env), None)
    ctx.allowed_networks = allowed_networks(environment.spec if environment else None)
    for m in valid:
        check = CHECKS.get(m.kind)
        if check is not None:
            check(ctx, m)
    _environment_settings(ctx, valid)
    return ctx.problems


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def open_api_warnings(manifests: Iterable[Manifest]) -> list[Problem]:
    """A warning for an Environment whose API listens beyond loopback with no tokens."""
    out = []
    for m in manifests:
        if m.kind != "Environment":
            continue
        v = Values("Environment", m.spec)
        listen = v("api.listen")
        if not _loopback(listen) and not v("api.auth.tokens"):
            out.append(
                m.problem(
                    ("spec", "api", "listen"),
                    f"spec.api.listen: the API listens on {listen} with no tokens: anyone who "
                    "can reach it may read it (set spec.api.auth.tokens, or listen on 127.0.0.1)",
                )
            )
    return out
