"""What one source's fetch uses, from its settings: the URL to fetch, its allowance
and credentials (``netpolicy.Access``), and the URL it may be *shown* as.

A ``urlSecret`` URL is never shown: errors name it as ``(urlSecret of SOURCE)`` and
items of a page source get the URL's scheme and host only.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from atlas.core.netpolicy import Access
from atlas.core.settings import SourceSettings
from atlas.errors import FetchRejected, FetchUnavailable


def target(source: SourceSettings) -> tuple[str, Access]:
    """(URL, Access) of a remote source; FetchRejected when a secret is not set."""
    creds = source.credentials
    if creds is not None and creds.missing:
        names = ", ".join(creds.missing)
        raise FetchRejected(
            f"source {source.name}: {names} not set in atlas-core's environment "
            "(its env file carries the secrets of urlSecret and basicAuth)"
        )
    url = source.url or (creds.url if creds else None)
    assert url is not None  # settings guarantee a URL or its secret
    return url, Access(source.allow_private, creds.auth if creds else None)


def hidden(source: SourceSettings) -> bool:
    return source.url is None and source.credentials is not None


def redacted(
    exc: FetchRejected | FetchUnavailable, source: SourceSettings
) -> FetchRejected | FetchUnavailable:
    """``exc`` with a secret URL replaced by a name (the same object, same status)."""
    creds = source.credentials
    if hidden(source) and creds is not None and creds.url:
        exc.args = (str(exc).replace(creds.url, f"(urlSecret of {source.name})"),)
    return exc


def shown_url(source: SourceSettings, fetched: str) -> str:
    """The URL an item of ``source`` may carry: a secret URL only as scheme://host/."""
    if not hidden(source):
        return source.url or fetched
    parts = urlsplit(fetched)
    return f"{parts.scheme}://{parts.hostname or ''}/"


def link_base(source: SourceSettings, fetched: str) -> str:
    """What a feed's relative links resolve against: the URL fetched (after redirects),
    but only scheme://host/ of a secret one (a token in its path stays out of links)."""
    return shown_url(source, fetched) if hidden(source) else fetched
