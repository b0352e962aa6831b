"""Post ids for platforms whose identity is a URL (an RSS guid, a Mastodon status URI)."""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

TRACKING_PARAMS = ("utm_", "fbclid", "gclid")


def canonical_uri(uri: str) -> str:
    """The same resource written two ways gets one form: scheme and host in lower case, no default port,
    no fragment, no tracking parameters, remaining parameters sorted. Paths keep their case (servers
    treat it as significant). Never raises for a malformed URL: a guid is only a name, and one bad item
    must not fail its feed."""
    try:
        parts = urlsplit(uri.strip())
    except ValueError:  # "http://[::1/a": cannot be split, so it is a name like any other
        return uri.strip()
    if not parts.scheme or not parts.netloc:
        return uri.strip()  # a guid that is not a URL ("tag:site,2026:123"): as written
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:  # "x:99999", "x:abc": no port to compare, so the port stays as written
        host, port = parts.netloc.rpartition("@")[2].lower(), None
    if port and (parts.scheme.lower(), port) not in {("http", 80), ("https", 443)}:
        host = f"{host}:{port}"
    query = sorted(
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.lower().startswith(TRACKING_PARAMS)
    )
    path = parts.path or "/"
    return urlunsplit((parts.scheme.lower(), host, path, urlencode(query), ""))


def uri_id(uri: str) -> str:
    """A ``PostId`` for a URL: ``u`` and 32 hex digits of the SHA-256 of its canonical form. A toot seen
    through two instances carries one URI, so it gets one key."""
    return "u" + hashlib.sha256(canonical_uri(uri).encode("utf-8")).hexdigest()[:32]
