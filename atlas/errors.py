"""The platform's exception tree.

AtlasError                  everything the platform raises on purpose
├── ConfigError             the rendered config (or a CLI argument) is wrong: exit 1
├── StorageError            the database cannot be opened or migrated
├── TemporaryFailure        may succeed later (network, busy database)
│   └── ProbeFailure        a health check or scrape got no usable answer
└── DeliveryError           a notification was not delivered (message already redacted)
    ├── PermanentDeliveryError  the receiver rejected this message: not retried
    └── TemporaryDeliveryError  network, timeout, 5xx, 429: retried with backoff

The CLI prints an AtlasError as one line on stderr and exits 1; any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class AtlasError(Exception):
    """Base of the platform's deliberate errors."""


class ConfigError(AtlasError):
    """The service's configuration is invalid."""


class StorageError(AtlasError):
    """The database cannot be used."""


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
