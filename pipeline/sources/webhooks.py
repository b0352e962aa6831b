"""Meta webhooks (``/webhooks/meta`` on ``pantau ingest serve``): the deletions a Facebook Page reports.

A Page's ``feed`` webhook sends ``{"object": "page", "entry": [{"id", "time", "changes": [{"field": "feed",
"value": {"item": "comment", "verb": "remove", "comment_id", "post_id", …}}]}]}`` when a comment or a post
is deleted; each becomes a tombstone keyed ``facebook:<id>``, the key the Facebook connector gave it. Meta
signs every delivery with the app secret (``X-Hub-Signature-256: sha256=<HMAC of the body>``) and checks the
endpoint once with a ``GET`` carrying ``hub.verify_token`` and ``hub.challenge``.

Instagram's webhooks report new comments and mentions but no deletions, so nothing is removed for
Instagram here (see the README)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

PATH = "/webhooks/meta"
REMOVED_ITEMS = {
    "comment": "comment_id",
    "post": "post_id",
    "status": "post_id",
    "photo": "post_id",
    "video": "post_id",
    "share": "post_id",
}
"""Feed items whose ``remove`` is a deletion of something the Facebook connector collects, and the field
holding its Graph id."""


def challenge(params: Mapping[str, str], verify_token: str) -> str | None:
    """The ``hub.challenge`` to echo (empty if it has none) when Meta's subscription check carries our
    verify token, else None."""
    given = params.get("hub.verify_token", "")
    if params.get("hub.mode") != "subscribe" or not hmac.compare_digest(
        given.encode(), verify_token.encode()
    ):
        return None
    return params.get("hub.challenge", "")


def signed(body: bytes, header: str | None, app_secret: str) -> bool:
    """Whether ``X-Hub-Signature-256`` is the HMAC-SHA256 of the body with the app secret."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    given = header[7:].strip().lower()
    return given.isascii() and hmac.compare_digest(given.encode(), expected.encode())


def removed_keys(payload: Any) -> list[str]:
    """Post keys of the comments and posts a Page's ``feed`` changes report removed; other changes (new
    comments, reactions, edits, hidden comments) are left to the polling connector."""
    if not isinstance(payload, dict) or payload.get("object") != "page":
        return []
    keys = []
    entries = payload.get("entry")
    for entry in entries if isinstance(entries, list) else []:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        for change in changes if isinstance(changes, list) else []:
            if not isinstance(change, dict) or change.get("field") != "feed":
                continue
            value = change.get("value")
            if not isinstance(value, dict):
                continue
            field = REMOVED_ITEMS.get(str(value.get("item")))
            if value.get("verb") == "remove" and field and isinstance(value.get(field), str | int):
                keys.append(f"facebook:{value[field]}")
    return list(dict.fromkeys(keys))
