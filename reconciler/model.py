"""The desired state of one environment: frozen dataclasses built from valid manifests.

Everything here is plain data with defaults applied and units converted (seconds,
bytes). Secrets appear only as ``SecretValue`` objects, which never print their value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from reconciler.secrets.keys import SecretValue

# Components in start order; stops run in reverse.
COMPONENTS: tuple[str, ...] = ("core", "api", "services", "monitoring")
RECONCILER = "reconciler"


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


@dataclass(frozen=True)
class Channel:
    name: str
    type: str  # email | webhook | slack
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
class Strategy:
    type: str  # recreate | rolling | blueGreen | canary
    max_unavailable: int = 1
    scale_down_delay_s: float = 0.0
    steps: tuple[CanaryStep, ...] = ()


@dataclass(frozen=True)
class Resources:
    memory_max: int | None = None
    cpu_quota: str | None = None
    nofile: int | None = None


@dataclass(frozen=True)
class RestartPolicy:
    policy: str = "on-failure"
    delay_s: float = 2.0
    burst: int = 5
    interval_s: float = 60.0


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


@dataclass(frozen=True)
class Settings:
    """The Environment manifest with defaults applied."""

    name: str
    log_level: str = "info"
    secrets_name: str | None = None
    database_path: str = "atlas.db"
    busy_timeout_s: float = 5.0
    api_listen: str = "127.0.0.1"
    api_port: int = 8080
    page_size: int = 50
    core_metrics_listen: str = "127.0.0.1"
    core_metrics_port: int = 9101
    core_concurrency: int = 4
    user_agent: str | None = None
    fetch_timeout_s: float = 10.0
    max_body_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 5
    monitoring_listen: str = "127.0.0.1"
    monitoring_port: int = 9102
    monitoring_interval_s: float = 10.0
    external_url: str | None = None
    reconciler_enabled: bool = False
    reconciler_interval_s: float = 60.0
    self_heal: bool = True
    reconciler_metrics_listen: str = "127.0.0.1"
    reconciler_metrics_port: int = 9110
    webhook_secret: str | None = None


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
    secrets: Mapping[str, SecretValue]  # only the secrets something refers to

    @property
    def environment(self) -> str:
        return self.settings.name

    def deployment(self, component: str) -> Deployment | None:
        for d in self.deployments:
            if d.component == component:
                return d
        return None
