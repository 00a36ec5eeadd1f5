"""Typed settings of ``atlas core``, built from its validated rendered config.

The JSON Schema (schemas/config/core.json) checks shapes; this module checks what
a schema cannot say (a feed needs a URL, a text source needs its text, names are
unique, ``--instance`` is within ``replicas``) and raises ConfigError naming the
file and the field. Every replica knows every source: which one fetches a source
is decided by leases in the content database (``atlas.core.leases``), not here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit, urlunsplit

from atlas.config import BaseSettings, base_settings, load_config
from atlas.core.netpolicy import IPNetwork, parse_networks
from atlas.errors import ConfigError
from atlas.resilience.breaker import BreakerPolicy
from atlas.resilience.ratelimit import DEFAULT_POLICY, AimdPolicy
from atlas.resilience.retry import RetryPolicy

SourceType = Literal["rss", "url", "text", "file"]


@dataclass(frozen=True)
class RateLimit:
    requests_per_minute: float
    burst: int


@dataclass(frozen=True)
class Credentials:
    """A source's secrets, read from core's env file: never in core.json, never shown
    (``url`` is then None in the source and in the API). ``missing`` names the
    variables that were not set (the fetch then fails saying so)."""

    url: str | None = field(default=None, repr=False)
    auth: tuple[str, str] | None = field(default=None, repr=False)
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class SourceSettings:
    name: str
    type: SourceType
    title: str | None
    enabled: bool
    interval_s: float
    url: str | None
    text: str | None
    timeout_s: float | None
    max_body_bytes: int | None
    rate_limit: RateLimit | None
    labels: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    allow_private: bool = False  # may reach loopback, private, link-local (netpolicy)
    credentials: Credentials | None = None  # urlSecret / basicAuth, from the env file

    @property
    def host(self) -> str | None:
        """The host part of the URL (with a non-default port): breaker and rate-limit key."""
        url = self.url or (self.credentials.url if self.credentials else None)
        if not url:
            return None
        parts = urlsplit(url)
        return parts.netloc.rpartition("@")[2].lower() or None

    @property
    def remote(self) -> bool:
        return self.type in ("rss", "url")


@dataclass(frozen=True)
class FetchSettings:
    user_agent: str
    timeout_s: float
    max_body_bytes: int
    max_redirects: int
    concurrency: int
    # networks every source may reach despite the address policy (atlas.core.netpolicy)
    allowed_networks: tuple[IPNetwork, ...] = ()


@dataclass(frozen=True)
class ErrorBackoff:
    """Growing delay of a failing source: interval · 2^(errors-1), capped."""

    cap_s: float = 6 * 3600.0


@dataclass(frozen=True)
class CoreSettings(BaseSettings):
    metrics_listen: str
    metrics_port: int
    replicas: int
    fetch: FetchSettings
    sources: tuple[SourceSettings, ...]
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    error_backoff: ErrorBackoff = field(default_factory=ErrorBackoff)
    max_freshness_s: float = 24 * 3600.0  # a Cache-Control max-age beyond this is capped
    default_rate: AimdPolicy = DEFAULT_POLICY
    lease_s: float = 30.0  # a claim on a source lasts this long unless renewed

    def for_instance(self, instance: int | None) -> InstanceSettings:
        """This replica's view: the sources it may claim (all) and its metrics port."""
        n = 1 if instance is None else instance
        if not 1 <= n <= self.replicas:
            raise ConfigError(
                f"{self.config_path}: --instance {n} is outside 1..replicas ({self.replicas})"
            )
        return InstanceSettings(self, n, self.sources, self.metrics_port + n - 1)

    def rate_policy(self, host: str) -> AimdPolicy:
        """The most conservative configured limit of the host's sources, else the default."""
        limits = [s.rate_limit for s in self.sources if s.host == host and s.rate_limit]
        if not limits:
            return self.default_rate
        rpm = min(limit.requests_per_minute for limit in limits)
        burst = min(limit.burst for limit in limits)
        return AimdPolicy(ceiling_per_s=rpm / 60.0, burst=burst)


@dataclass(frozen=True)
class InstanceSettings:
    core: CoreSettings
    instance: int
    sources: tuple[SourceSettings, ...]
    metrics_port: int


def _split_userinfo(url: str) -> tuple[str, tuple[str, str] | None]:
    """(the URL without ``user:pass@``, (user, password) or None)."""
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not at:
        return url, None
    user, _, password = userinfo.partition(":")
    return urlunsplit(parts._replace(netloc=hostport)), (unquote(user), unquote(password))


def _credentials(raw: dict[str, Any], env: Mapping[str, str], where: str) -> Credentials | None:
    url_env, basic = raw.get("urlEnv"), raw.get("basicAuth")
    if url_env is None and basic is None:
        return None
    missing: list[str] = []
    url, auth = None, None
    if url_env is not None:
        url = env.get(url_env)
        if url is None:
            missing.append(url_env)
        else:
            url, auth = _split_userinfo(url.strip())
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ConfigError(
                    f"{where}.urlEnv: the value of {url_env} is not an http(s) URL (not shown)"
                )
    if basic is not None:
        names = (basic["usernameEnv"], basic["passwordEnv"])
        values = [env.get(name) for name in names]
        missing += [name for name, value in zip(names, values, strict=True) if value is None]
        if values[0] is not None and values[1] is not None:
            auth = (values[0], values[1])
    return Credentials(url, auth, tuple(missing))


def _check_url(kind: str, url: str | None, url_env: str | None, where: str) -> None:
    if url_env is not None and url is None:
        return
    if not url:
        raise ConfigError(f"{where}.url: a source of type {kind} needs a url (or urlEnv)")
    parts = urlsplit(url)
    if "@" in parts.netloc:
        raise ConfigError(
            f"{where}.url: credentials in a URL are not accepted (the URL is not shown): "
            "give them as basicAuth or the whole URL as urlSecret"
        )
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{where}.url: expected an http(s) URL, got {url!r}")


def _source(raw: dict[str, Any], where: str, env: Mapping[str, str]) -> SourceSettings:
    kind = raw["type"]
    url = raw["url"]
    if kind in ("rss", "url"):
        _check_url(kind, url, raw.get("urlEnv"), where)
    elif raw["text"] is None:
        raise ConfigError(f"{where}.text: a source of type {kind} needs its text")
    limit = raw["rateLimit"]
    return SourceSettings(
        name=raw["name"],
        type=kind,
        title=raw["title"],
        enabled=raw["enabled"],
        interval_s=float(raw["intervalSeconds"]),
        url=url,
        text=raw["text"],
        timeout_s=raw["timeoutSeconds"],
        max_body_bytes=raw["maxBodyBytes"],
        rate_limit=None
        if limit is None
        else RateLimit(float(limit["requestsPerMinute"]), int(limit["burst"])),
        labels=dict(raw["labels"]),
        allow_private=bool(raw.get("allowPrivate", False)),
        credentials=_credentials(raw, env, where),
    )


def from_dict(
    data: dict[str, Any], path: Path, env: Mapping[str, str] | None = None
) -> CoreSettings:
    """Settings from a config already validated against core.json; the sources'
    secrets come from ``env`` (this process's environment: core's env file)."""
    environ = os.environ if env is None else env
    sources = []
    seen: set[str] = set()
    for i, raw in enumerate(data["sources"]):
        where = f"{path}: sources[{i}]"
        if raw["name"] in seen:
            raise ConfigError(f"{where}.name: duplicate source name {raw['name']!r}")
        seen.add(raw["name"])
        sources.append(_source(raw, where, environ))
    fetch = data["fetch"]
    return CoreSettings(
        **base_settings(data, path).base_fields(),
        metrics_listen=data["metrics"]["listen"],
        metrics_port=int(data["metrics"]["port"]),
        replicas=int(data["replicas"]),
        lease_s=float(data.get("leaseSeconds", 30)),
        fetch=FetchSettings(
            user_agent=fetch["userAgent"],
            timeout_s=float(fetch["timeoutSeconds"]),
            max_body_bytes=int(fetch["maxBodyBytes"]),
            max_redirects=int(fetch["maxRedirects"]),
            concurrency=int(fetch["concurrency"]),
            allowed_networks=parse_networks(
                fetch["allowPrivateNetworks"], f"{path}: fetch.allowPrivateNetworks"
            ),
        ),
        sources=tuple(sources),
    )


def load(path: Path) -> CoreSettings:
    return from_dict(load_config(path, "core"), path)
