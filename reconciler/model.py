"""The desired state of one environment: frozen dataclasses built from valid manifests.

Everything here is plain data with defaults applied and units converted (seconds,
bytes). The defaults themselves live in the schemas (``schemas/v1/``), which the build
stage reads; nothing here repeats them. Secrets appear only as ``Secret`` objects
(``secrets.keys.SecretValue``), which never print their value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

# Components in start order; stops run in reverse.
COMPONENTS: tuple[str, ...] = ("core", "api", "services", "monitoring")


class Secret(Protocol):
    """A secret value that never prints itself (``secrets.keys.SecretValue``)."""

    @property
    def digest(self) -> str:
        """A keyed digest: plans compare these, never values."""
        ...

    @property
    def sealed(self) -> bool:
        """True when only the encrypted token is known (no key here)."""
        ...

    def reveal(self) -> str: ...


@dataclass(frozen=True)
class Revision:
    """What the desired state was built from."""

    sha: str  # a git commit, or "dir:<hash>" for a plain folder
    ref: str = ""
    origin: str = ""  # repository URL or path
    subject: str = ""  # first line of the commit message

    @property
    def short(self) -> str:
        return self.sha[:12] if not self.sha.startswith("dir:") else self.sha[:16]


@dataclass(frozen=True)
class RateLimit:
    requests_per_minute: float
    burst: int


@dataclass(frozen=True)
class Source:
    name: str
    type: str  # rss | url | text | file
    interval_s: float
    enabled: bool
    title: str | None = None
    url: str | None = None
    path: str | None = None  # file: the path inside the repository
    text: str | None = None  # text: the text; file: the file's content
    timeout_s: float | None = None
    max_body_bytes: int | None = None
    rate_limit: RateLimit | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    allow_private: bool = False  # spec.fetch.allowPrivate
    url_secret: str | None = None  # the secret holding the URL (url is then None)
    basic_auth: tuple[str, str] | None = None  # (username secret, password secret)

    @property
    def secrets(self) -> list[str]:
        named = [self.url_secret, *(self.basic_auth or ())]
        return [name for name in named if name]


@dataclass(frozen=True)
class Channel:
    name: str
    type: str  # email | webhook | slack | log
    send_resolved: bool
    settings: Mapping[str, object]  # the type's block, secret fields excluded
    secret_fields: Mapping[str, str]  # e.g. {"password": "smtp_password"}
    templates: Mapping[str, str]


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str  # = != =~ !~
    value: str


@dataclass(frozen=True)
class Rule:
    name: str
    metric: str
    matchers: tuple[Matcher, ...]
    op: str
    threshold: float
    for_s: float
    keep_firing_for_s: float
    repeat_interval_s: float
    severity: str
    channels: tuple[str, ...]
    labels: Mapping[str, str]
    annotations: Mapping[str, str]


@dataclass(frozen=True)
class CanaryStep:
    replicas: int
    pause_s: float


@dataclass(frozen=True)
class AnalysisMetric:
    name: str  # errorRatio | p99
    max: float | None  # an absolute bound
    max_over_stable: float | None  # at most stable's value + this
    max_ratio_to_stable: float | None  # at most stable's value × this


@dataclass(frozen=True)
class Analysis:
    interval_s: float
    count: int
    failure_limit: int
    min_requests: int  # below this in a window a replica gets synthetic requests
    metrics: tuple[AnalysisMetric, ...]


@dataclass(frozen=True)
class BlueGreen:
    auto_promote: bool
    scale_down_delay_s: float
    preview_port: int  # replica N answers on 127.0.0.1:preview_port + N - 1 too
    analysis: Analysis  # pre-promotion


@dataclass(frozen=True)
class Strategy:
    type: str  # recreate | rolling | blueGreen | canary
    max_unavailable: int
    steps: tuple[CanaryStep, ...]
    blue_green: BlueGreen | None


@dataclass(frozen=True)
class Resources:
    memory_max: int | None = None
    cpu_quota: str | None = None
    nofile: int | None = None


@dataclass(frozen=True)
class RestartPolicy:
    policy: str
    delay_s: float
    burst: int
    interval_s: float


@dataclass(frozen=True)
class HealthCheck:
    path: str | None  # HTTP path; None: systemd state only
    port: int | None
    interval_s: float
    timeout_s: float
    failure_threshold: int


@dataclass(frozen=True)
class Deployment:
    name: str
    component: str
    version: str
    replicas: int
    strategy: Strategy
    resources: Resources
    restart: RestartPolicy
    health: HealthCheck
    sha256: str | None  # of the version's atlas wheel, checked before installing


@dataclass(frozen=True)
class Releases:
    """``spec.releases``: where each version's Atlas is installed from."""

    source: str  # a folder of wheels, a file:// URL or a package index URL
    keep: int  # installed releases kept for rollback


@dataclass(frozen=True)
class BackupPolicy:
    name: str
    schedule: str
    randomized_delay_s: float
    destination: str
    keep_last: int
    max_age_s: float | None
    encrypt: bool
    encryption_key_secret: str | None
    verify: bool
    full_every_s: float = 0.0  # 0: every backup is full
    drill_every_s: float | None = None  # None: no restore drills


@dataclass(frozen=True)
class ApiToken:
    """One bearer token of the API: its value is the secret ``secret``."""

    name: str
    secret: str
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class ApiTls:
    """The API's certificate and key: secrets (PEM) or files on the host."""

    cert_secret: str | None
    key_secret: str | None
    cert_file: str | None
    key_file: str | None


@dataclass(frozen=True)
class Settings:
    """The Environment manifest with defaults applied."""

    name: str
    log_level: str
    secrets_name: str | None
    database_path: str
    busy_timeout_s: float
    api_listen: str
    api_port: int
    page_size: int
    core_metrics_listen: str
    core_metrics_port: int
    core_concurrency: int
    user_agent: str | None
    fetch_timeout_s: float
    max_body_bytes: int
    max_redirects: int
    monitoring_listen: str
    monitoring_port: int
    monitoring_interval_s: float
    external_url: str | None
    reconciler_enabled: bool
    reconciler_interval_s: float
    self_heal: bool
    reconciler_metrics_listen: str
    reconciler_metrics_port: int
    webhook_secret: str | None
    releases: Releases | None  # None: every version runs the Atlas installed here
    # spec.sources.allowPrivateNetworks: CIDRs every Source may fetch from
    allow_private_networks: tuple[str, ...]
    api_tokens: tuple[ApiToken, ...]
    api_protect_metrics: bool
    api_tls: ApiTls | None  # None: plain HTTP


@dataclass(frozen=True)
class ReconcilerInvocation:
    """How this reconciler was asked to run, for rendering its own unit."""

    repo: str
    ref: str
    path: str = "."


@dataclass(frozen=True)
class DesiredState:
    settings: Settings
    revision: Revision
    sources: tuple[Source, ...]
    channels: tuple[Channel, ...]
    rules: tuple[Rule, ...]
    deployments: tuple[Deployment, ...]
    backup: BackupPolicy | None
    secrets: Mapping[str, Secret]  # only the secrets something refers to

    @property
    def environment(self) -> str:
        return self.settings.name

    def deployment(self, component: str) -> Deployment | None:
        for d in self.deployments:
            if d.component == component:
                return d
        return None
