"""Contracts of agency responsiveness: thread messages on ``pantau.responses.input`` and the documents
of the ``pantau-responses`` index (one per complaint and agency)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.vocab import Agency, Category, Platform, Region

ResponseStatus = Literal["open", "answered", "answered_late", "overdue"]
MarkKind = Literal["handled_elsewhere", "not_a_complaint"]


class ThreadPost(BaseModel):
    """A post of a conversation, as the responsiveness stage needs it: a complaint, an official
    account's reply, or (on X) a link of the reply chain. Keyed by its thread on the input topic."""

    model_config = ConfigDict(json_schema_extra={"title": "ThreadPost"})

    kind: Literal["post"] = "post"
    key: str = Field(description="platform:id")
    id: str
    platform: Platform
    created_at: AwareDatetime
    reply_to_id: str | None = None
    conversation_id: str | None = None
    complaint_agencies: list[Agency] = Field(
        default_factory=list, description="agencies this post complains to (empty: not a complaint)"
    )
    official: Agency | None = Field(None, description="agency whose official account wrote the post")
    account: str | None = Field(None, description="the author's handle (or id) when official")
    region: Region | None = None
    category: Category | None = None


class ResponseMark(BaseModel):
    """A staff correction of one complaint record, sent by ``pantau responsiveness mark``."""

    model_config = ConfigDict(json_schema_extra={"title": "ResponseMark"})

    kind: Literal["mark"] = "mark"
    record: str = Field(description="the record's key: complaint key|agency")
    mark: MarkKind
    by: str = Field(min_length=1, max_length=256)
    why: str = Field(min_length=1, max_length=2000)
    at: AwareDatetime


class ThreadPrune(BaseModel):
    """Sent by the worker to itself: drop the thread from the table if nothing happened in it since
    ``idle_since`` (the index keeps its records, and a later post reads them back)."""

    model_config = ConfigDict(json_schema_extra={"title": "ThreadPrune"})

    kind: Literal["prune"] = "prune"
    idle_since: AwareDatetime


class Mark(BaseModel):
    kind: MarkKind
    by: str
    why: str
    at: datetime


class ResponseDocument(BaseModel):
    """One complaint to one agency in ``pantau-responses``; ``_id`` = ``key``. Written by the
    responsiveness agent only."""

    model_config = ConfigDict(json_schema_extra={"title": "ResponseDocument"})

    key: str = Field(description="complaint key|agency")
    complaint_key: str
    agency: Agency
    region: Region | None = None
    category: Category | None = None
    platform: Platform
    thread: str = Field(description="the thread key the stage keeps the complaint under")
    reply_to_id: str | None = None
    conversation_id: str | None = None
    created_at: datetime
    due_at: datetime = Field(description="when the SLA runs out (business hours counted when enabled)")
    sla_s: int
    first_response_at: datetime | None = None
    first_response_s: int | None = Field(None, description="seconds to the first reply (business seconds)")
    response_key: str | None = None
    responder: str | None = Field(None, description="the official account that replied first")
    status: ResponseStatus
    mark: Mark | None = None
    updated_at: datetime
