"""The platform's exception tree.

AtlasError                  everything the platform raises on purpose
├── ConfigError             the rendered config (or a CLI argument) is wrong: exit 1
├── StorageError            the database cannot be opened or migrated
└── TemporaryFailure        may succeed later (network, busy database)

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
