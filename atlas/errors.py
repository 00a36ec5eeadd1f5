"""The platform's exception tree.

AtlasError                  everything the platform raises on purpose
├── ConfigError             the rendered config (or a CLI argument) is wrong: exit 1
├── StorageError            the database cannot be opened or migrated
├── LeaseLost               another instance took over a source's lease: this
│                           instance's late result is not stored
├── PermanentFailure        retrying will not help until something changes
│   ├── FetchRejected       the server answered, but not with usable content
│   │                       (4xx, body too large, too many redirects, bad URL)
│   ├── ContentError        the content is not what the source type expects
│   │                       (not a feed, unparseable)
│   └── BackupError         a backup could not be made, verified or restored
├── TemporaryFailure        may succeed later (network, busy database)
│   ├── FetchUnavailable    timeout, connection error, 5xx, 429; carries
│   │   │                   ``retry_after`` when the server said when to come back
│   │   └── FetchTimedOut   no complete answer within the fetch's timeout or its
│   │                       one deadline (connect, headers and body): a stalled source;
│   │                       past the deadline it is not retried in-process
│   ├── CircuitOpen         the host's circuit breaker refuses calls for now
│   └── ProbeFailure        a health check or scrape got no usable answer
├── FetchCancelled          a shutdown cut a fetch short: not a failure of the source
└── DeliveryError           a notification was not delivered (message already redacted)
    ├── PermanentDeliveryError  the receiver rejected this message: not retried
    ├── TemporaryDeliveryError  network, timeout, 5xx, 429: retried with backoff
    └── PartialDelivery     some recipients got it, others were refused (per recipient)

Only TemporaryFailure is retried (capped exponential backoff with full jitter).
Third-party errors (httpx, sqlite3, feedparser) are translated at the module that
calls them, with ``raise … from``. The CLI prints an AtlasError as one line on
stderr and exits 1; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class AtlasError(Exception):
    """Base of the platform's deliberate errors."""


class ConfigError(AtlasError):
    """The service's configuration is invalid."""


class StorageError(AtlasError):
    """The database cannot be used."""


class LeaseLost(AtlasError):
    """A result came back under a lease that expired and was taken over (or released):
    storing it could overwrite the new holder's work, so it is dropped."""


class PermanentFailure(AtlasError):
    """Trying again will fail the same way until the source or config changes."""


class FetchRejected(PermanentFailure):
    """The server answered, but the answer cannot be used (status, size, redirects)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ContentError(PermanentFailure):
    """The fetched content is not what the source's type expects."""


class BackupError(PermanentFailure):
    """A backup could not be written, verified, decrypted or restored."""


class TemporaryFailure(AtlasError):
    """Something that may work if tried again later."""


class ProbeFailure(TemporaryFailure):
    """A component's health endpoint or /metrics gave no usable answer in time."""


class DeliveryError(AtlasError):
    """A notification could not be delivered. The message never contains a secret."""


class PermanentDeliveryError(DeliveryError):
    """The receiver rejected this very message (HTTP 4xx, SMTP 5xx): retrying cannot help."""


class TemporaryDeliveryError(DeliveryError, TemporaryFailure):
    """The channel is down or slow (connection, timeout, HTTP 5xx/429, SMTP 4xx): retry later."""


class PartialDelivery(DeliveryError):
    """The message went to ``accepted`` but ``refused`` (recipient → (code, reply)) were
    refused: it must not be sent to the accepted again, and only recipients refused
    with a temporary code (< 500) are worth another attempt."""

    def __init__(
        self, where: str, accepted: tuple[str, ...], refused: dict[str, tuple[int, str]]
    ) -> None:
        self.where = where
        self.accepted = accepted
        self.refused = refused
        parts = [f"delivered to {', '.join(accepted)}"] if accepted else []
        parts += [f"{r} refused ({code} {reply})" for r, (code, reply) in refused.items()]
        super().__init__(f"{where}: " + "; ".join(parts))

    @property
    def retry(self) -> tuple[str, ...]:
        """The recipients refused for now (4xx), to try again."""
        return tuple(r for r, (code, _) in self.refused.items() if code < 500)


class FetchUnavailable(TemporaryFailure):
    """The server could not be reached or asked us to come back later."""

    def __init__(
        self, message: str, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class FetchTimedOut(FetchUnavailable):
    """The server did not answer completely in time: a timeout of one step, or the
    deadline of the whole fetch (connect, headers and body) passed (``deadline``)."""

    def __init__(self, message: str, *, deadline: bool = False) -> None:
        super().__init__(message)
        self.deadline = deadline


class FetchCancelled(AtlasError):
    """The worker is shutting down and cut this fetch short; the source stays due."""


class CircuitOpen(TemporaryFailure):
    """The host's circuit breaker is open: no call is attempted."""

    def __init__(self, host: str, retry_after: float) -> None:
        super().__init__(f"circuit open for {host}; next trial in {retry_after:.0f}s")
        self.host = host
        self.retry_after = retry_after
