"""Upload saved objects to Kibana's import API, the way the UI's "Import" does.

``POST <kibana>/[s/<space>/]api/saved_objects/_import?overwrite=true`` with the NDJSON as the multipart
field ``file`` and the ``kbn-xsrf`` header Kibana requires of API writes. The answer carries ``success``,
``successCount`` and ``errors`` (one per object that did not import, with its type, id and error).
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field


class ImportFailure(BaseModel):
    """One object Kibana did not import."""

    model_config = ConfigDict(extra="allow")

    type: str = ""
    id: str = ""
    title: str | None = None
    error: dict[str, Any] = Field(default_factory=dict)

    def describe(self) -> str:
        kind = self.error.get("type", "error")
        detail = {k: v for k, v in self.error.items() if k != "type"}
        name = f"{self.type} {self.id}" + (f" ({self.title})" if self.title else "")
        return f"{name}: {kind}" + (f" {detail}" if detail else "")


class ImportResult(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    success: bool
    success_count: int = Field(0, alias="successCount")
    errors: list[ImportFailure] = Field(default_factory=list)


class KibanaRefused(Exception):
    """Kibana answered the request itself with an error (wrong URL, no such space, auth, bad file)."""


def import_url(base: str, space: str | None) -> str:
    prefix = base.rstrip("/") + (f"/s/{space}" if space and space != "default" else "")
    return f"{prefix}/api/saved_objects/_import"


def import_objects(
    base: str,
    ndjson: bytes,
    space: str | None = None,
    auth: httpx.Auth | tuple[str, str] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> ImportResult:
    response = httpx.post(
        import_url(base, space),
        params={"overwrite": "true"},
        files={"file": ("pantau-saved-objects.ndjson", ndjson, "application/ndjson")},
        headers={"kbn-xsrf": "pantau", **(headers or {})},
        auth=auth,
        timeout=timeout,
    )
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200 or not isinstance(body, dict) or "success" not in body:
        message = body.get("message") if isinstance(body, dict) else response.text[:300]
        raise KibanaRefused(f"HTTP {response.status_code} from {response.request.url}: {message}")
    return ImportResult.model_validate(body)
