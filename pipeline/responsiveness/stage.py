"""Linking complaints to agencies' first responses, as a stage: enriched posts in, thread messages out
(``route``); thread messages in, ``pantau-responses`` documents out (``link``).

Routing puts every post a thread needs under one key, so one partition (one table partition, one worker)
sees all of it: on X the conversation id (the thread's root post); elsewhere a complaint under its own key
and an official reply under the key of the post it answers, so a direct reply always meets its complaint.
Either can come first (partitions, backfills): the thread state keeps both until they meet. No Faust,
Kafka or Elasticsearch here; the wiring (``agent.py``) reads and writes the table and the index.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from pipeline.gazetteer.accounts import OfficialAccounts
from pipeline.responsiveness.clock import SlaClock
from pipeline.sinks.elasticsearch import IndexAction
from pipeline.stages.records import Failed, Outgoing, Record
from pipeline.validation import describe_validation_error
from schemas.posts import EnrichedPost
from schemas.responses import Mark, ResponseDocument, ResponseMark, ResponseStatus, ThreadPost, ThreadPrune
from schemas.vocab import Category, Platform, Region

MAX_REPLIES = 200
"""Official replies a thread keeps while they wait for a complaint they answer (oldest dropped)."""
MAX_CHAIN = 64
"""Reply-chain links followed from a reply towards its complaint."""
ASKS = re.compile(
    r"\?|\b(apa(kah)?|bagaimana|gimana|gmn|kapan|kpn|kenapa|knp|mengapa|dimana|di mana|berapa|brp|"
    r"bisakah|bisa\s+gak|bisa\s+tidak|kok|tolong|tlg|mohon\s+(bantuan|info|dibantu|dicek|ditindak\w*)|"
    r"minta\s+tolong|mohon\s+segera)\b",
    re.IGNORECASE,
)
"""A question or a plea for help ("tolong dibantu min"): what a citizen asks of an agency, whatever the
sentiment model makes of its tone."""

ThreadMessage = Annotated[ThreadPost | ResponseMark | ThreadPrune, Field(discriminator="kind")]
THREAD_MESSAGE: TypeAdapter[ThreadPost | ResponseMark | ThreadPrune] = TypeAdapter(ThreadMessage)


def asks(text: str) -> bool:
    return ASKS.search(text) is not None


class AgencyClock(BaseModel):
    """One agency's clock on one complaint: stopped only by that agency's own accounts."""

    due_at: datetime
    sla_s: int
    first_response_at: datetime | None = None
    first_response_s: int | None = None
    response_key: str | None = None
    responder: str | None = None
    mark: Mark | None = None


class Complaint(BaseModel):
    key: str
    id: str
    platform: Platform
    created_at: datetime
    reply_to_id: str | None = None
    conversation_id: str | None = None
    region: Region | None = None
    category: Category | None = None
    clocks: dict[str, AgencyClock] = {}


class Reply(BaseModel):
    key: str
    created_at: datetime
    reply_to_id: str | None = None
    conversation_id: str | None = None
    agency: str
    account: str | None = None


class ThreadState(BaseModel):
    """What the table keeps per thread key."""

    parents: dict[str, str] = {}
    complaints: dict[str, Complaint] = {}
    replies: list[Reply] = []
    seen_at: datetime | None = None
    """When the worker last took a post of the thread (wall time)."""

    def settled(self, now: datetime) -> bool:
        """No clock still running: every record answered, marked or overdue."""
        return all(
            status_of(clock, now) != "open" or clock.mark is not None
            for complaint in self.complaints.values()
            for clock in complaint.clocks.values()
        )


@dataclass
class RouteOutcome:
    messages: list[Outgoing] = field(default_factory=list)
    failed: list[Failed] = field(default_factory=list)


@dataclass
class LinkOutcome:
    states: dict[bytes, bytes] = field(default_factory=dict)
    """Thread states to put in the table (changed ones only)."""
    pruned: list[bytes] = field(default_factory=list)
    """Threads to delete from the table."""
    documents: list[IndexAction] = field(default_factory=list)
    failed: list[Failed] = field(default_factory=list)


def record_key(complaint_key: str, agency: str) -> str:
    return f"{complaint_key}|{agency}"


class ResponsivenessStage:
    def __init__(self, accounts: OfficialAccounts, clock: SlaClock, index: str) -> None:
        self.accounts = accounts
        self.clock = clock
        self.index = index
        self.overdue_written: set[str] = set()

    # -- routing (enriched posts → thread messages) ----------------------------------------------------
    def route(self, records: Sequence[Record]) -> RouteOutcome:
        outcome = RouteOutcome()
        for record in records:
            try:
                post = EnrichedPost.model_validate_json(record.value or b"")
            except ValidationError as exc:
                outcome.failed.append(Failed(record, "responses", describe_validation_error(exc)))
                continue
            message = self.thread_post(post)
            if message is None:
                continue
            value = message.model_dump_json().encode()
            outcome.messages += [Outgoing(key.encode(), value) for key in thread_keys(message)]
        return outcome

    def thread_post(self, post: EnrichedPost) -> ThreadPost | None:
        """What the stage needs of ``post``, or None when it is neither a complaint, nor an official
        reply, nor a link of an X reply chain."""
        author = post.author
        account = self.accounts.find(
            post.platform.value, author.id if author else None, author.handle if author else None
        )
        complaint = (
            account is None
            and bool(post.agencies)
            and (post.sentiment.label == "negative" or (post.is_public_service and asks(post.text)))
        )
        official_reply = account is not None and bool(post.reply_to_id or post.conversation_id)
        chain_link = post.platform == Platform.X and bool(post.conversation_id and post.reply_to_id)
        if not (complaint or official_reply or chain_link):
            return None
        return ThreadPost(
            key=post.key,
            id=post.id,
            platform=post.platform,
            created_at=post.created_at,
            reply_to_id=post.reply_to_id,
            conversation_id=post.conversation_id,
            complaint_agencies=list(dict.fromkeys(post.agencies)) if complaint else [],
            official=account.agency if account else None,
            account=(author.handle or author.id) if account and author else None,
            region=post.region or (account.region if account else None),
            category=post.category,
        )

    # -- linking (thread messages → documents) ---------------------------------------------------------
    def link(
        self, records: Sequence[Record], states: Mapping[bytes, bytes | None], now: datetime
    ) -> LinkOutcome:
        """Apply ``records`` (thread messages) to their threads' stored ``states``."""
        outcome = LinkOutcome()
        threads: dict[bytes, ThreadState] = {}
        changed: set[bytes] = set()
        pruned: set[bytes] = set()
        documents: dict[str, IndexAction] = {}
        for record in records:
            try:
                message = THREAD_MESSAGE.validate_json(record.value or b"")
            except ValidationError as exc:
                outcome.failed.append(Failed(record, "responses", describe_validation_error(exc)))
                continue
            thread_key = record.key or b""
            if thread_key not in threads:
                stored = states.get(thread_key)
                threads[thread_key] = ThreadState.model_validate_json(stored) if stored else ThreadState()
            state = threads[thread_key]
            if isinstance(message, ThreadPrune):
                if states.get(thread_key) and (state.seen_at is None or state.seen_at < message.idle_since):
                    pruned.add(thread_key)
                continue
            pruned.discard(thread_key)
            if isinstance(message, ThreadPost):
                touched = self._apply_post(state, message)
                state.seen_at = now
                changed.add(thread_key)
            else:
                touched = self._apply_mark(state, message)
                if touched:
                    changed.add(thread_key)
            for complaint, agency in touched:
                action = self.document(thread_key.decode(), complaint, agency, now)
                documents[action.key] = action
        outcome.states = {key: threads[key].model_dump_json().encode() for key in changed - pruned}
        outcome.pruned = sorted(pruned)
        outcome.documents = list(documents.values())
        return outcome

    def _apply_post(self, state: ThreadState, post: ThreadPost) -> list[tuple[Complaint, str]]:
        if post.reply_to_id:
            state.parents[post.id] = post.reply_to_id
        if post.complaint_agencies and post.key not in state.complaints:
            state.complaints[post.key] = Complaint(
                key=post.key,
                id=post.id,
                platform=post.platform,
                created_at=post.created_at,
                reply_to_id=post.reply_to_id,
                conversation_id=post.conversation_id,
                region=post.region,
                category=post.category,
                clocks={
                    a.value: AgencyClock(
                        due_at=self.clock.due(post.created_at, a.value), sla_s=self.clock.sla(a.value)
                    )
                    for a in post.complaint_agencies
                },
            )
            new = [(state.complaints[post.key], a.value) for a in post.complaint_agencies]
        else:
            new = []
        if post.official is not None and all(r.key != post.key for r in state.replies):
            state.replies.append(
                Reply(
                    key=post.key,
                    created_at=post.created_at,
                    reply_to_id=post.reply_to_id,
                    conversation_id=post.conversation_id,
                    agency=post.official.value,
                    account=post.account,
                )
            )
            state.replies = state.replies[-MAX_REPLIES:]
        answered = self._match(state)
        return list({(c.key, a): (c, a) for c, a in [*new, *answered]}.values())

    def _match(self, state: ThreadState) -> list[tuple[Complaint, str]]:
        """Give every clock the earliest official reply of its own agency that answers the complaint."""
        touched = []
        for complaint in state.complaints.values():
            for agency, clock in complaint.clocks.items():
                for reply in state.replies:
                    if reply.agency != agency or not answers(reply, complaint, state.parents):
                        continue
                    if clock.first_response_at is not None and (
                        clock.first_response_at,
                        clock.response_key or "",
                    ) <= (reply.created_at, reply.key):
                        continue
                    clock.first_response_at = reply.created_at
                    clock.first_response_s = self.clock.elapsed(complaint.created_at, reply.created_at)
                    clock.response_key = reply.key
                    clock.responder = reply.account
                    touched.append((complaint, agency))
        return touched

    def _apply_mark(self, state: ThreadState, mark: ResponseMark) -> list[tuple[Complaint, str]]:
        complaint_key, _, agency = mark.record.rpartition("|")
        complaint = state.complaints.get(complaint_key)
        if complaint is None or agency not in complaint.clocks:
            return []
        complaint.clocks[agency].mark = Mark(kind=mark.mark, by=mark.by, why=mark.why, at=mark.at)
        return [(complaint, agency)]

    # -- documents ---------------------------------------------------------------------------------------
    def document(self, thread: str, complaint: Complaint, agency: str, now: datetime) -> IndexAction:
        clock = complaint.clocks[agency]
        doc = ResponseDocument(
            key=record_key(complaint.key, agency),
            complaint_key=complaint.key,
            agency=agency,
            region=complaint.region,
            category=complaint.category,
            platform=complaint.platform,
            thread=thread,
            reply_to_id=complaint.reply_to_id,
            conversation_id=complaint.conversation_id,
            created_at=complaint.created_at,
            due_at=clock.due_at,
            sla_s=clock.sla_s,
            first_response_at=clock.first_response_at,
            first_response_s=clock.first_response_s,
            response_key=clock.response_key,
            responder=clock.responder,
            status=status_of(clock, now),
            mark=clock.mark,
            updated_at=now,
        )
        return IndexAction(key=doc.key, index=self.index, source=doc.model_dump(mode="json"))

    def overdue(self, states: Iterable[tuple[bytes, bytes]], now: datetime) -> list[IndexAction]:
        """Documents of unanswered, unmarked complaints whose SLA ran out since they were last written
        (call ``overdue_done`` once they are indexed)."""
        actions = []
        for thread_key, stored in states:
            state = ThreadState.model_validate_json(stored)
            for complaint in state.complaints.values():
                for agency, clock in complaint.clocks.items():
                    key = record_key(complaint.key, agency)
                    if status_of(clock, now) == "overdue" and key not in self.overdue_written:
                        actions.append(self.document(thread_key.decode(), complaint, agency, now))
        return actions

    def overdue_done(self, actions: Iterable[IndexAction]) -> None:
        self.overdue_written.update(a.key for a in actions)

    def idle(self, states: Iterable[tuple[bytes, bytes]], now: datetime, keep: timedelta) -> list[Outgoing]:
        """Prune messages for threads nothing happened in for ``keep`` and no clock runs in any more: the
        table keeps what is live, the index everything (a thread that wakes up is read back from it)."""
        since = now - keep
        prune = ThreadPrune(idle_since=since).model_dump_json().encode()
        messages = []
        for thread_key, stored in states:
            state = ThreadState.model_validate_json(stored)
            if state.seen_at is not None and state.seen_at < since and state.settled(now):
                messages.append(Outgoing(thread_key, prune))
        return messages

    # -- restoring from the index ----------------------------------------------------------------------
    def restore(self, documents: Iterable[Mapping[str, Any]]) -> dict[bytes, bytes]:
        """Thread states rebuilt from ``pantau-responses`` documents, for threads the table lost (a broker
        restart on the embedded stack): complaints with their clocks; replies still waiting for a
        complaint are not in the index and are lost."""
        threads: dict[str, ThreadState] = {}
        for source in documents:
            doc = ResponseDocument.model_validate(source)
            state = threads.setdefault(doc.thread, ThreadState())
            complaint = state.complaints.setdefault(
                doc.complaint_key,
                Complaint(
                    key=doc.complaint_key,
                    id=doc.complaint_key.split(":", 1)[1],
                    platform=doc.platform,
                    created_at=doc.created_at,
                    reply_to_id=doc.reply_to_id,
                    conversation_id=doc.conversation_id,
                    region=doc.region,
                    category=doc.category,
                ),
            )
            if doc.reply_to_id:
                state.parents[complaint.id] = doc.reply_to_id
            complaint.clocks[doc.agency.value] = AgencyClock(
                due_at=doc.due_at,
                sla_s=doc.sla_s,
                first_response_at=doc.first_response_at,
                first_response_s=doc.first_response_s,
                response_key=doc.response_key,
                responder=doc.responder,
                mark=doc.mark,
            )
            if doc.status == "overdue":
                self.overdue_written.add(doc.key)
        return {key.encode(): state.model_dump_json().encode() for key, state in threads.items()}


def thread_keys(post: ThreadPost) -> list[str]:
    """The thread keys ``post`` goes to: on X with a conversation id, the conversation (the root post);
    elsewhere a complaint's own key and, for an official reply, the key of the post it replies to."""
    if post.platform == Platform.X and post.conversation_id:
        return [f"x:{post.conversation_id}"]
    keys = []
    if post.complaint_agencies:
        keys.append(post.key)
    if post.official is not None and post.reply_to_id:
        keys.append(f"{post.platform.value}:{post.reply_to_id}")
    return keys


def answers(reply: Reply, complaint: Complaint, parents: Mapping[str, str]) -> bool:
    """The reply chain first: ``reply`` answers ``complaint`` if following reply_to_id from it reaches the
    complaint. On X, a conversation id equal to the complaint's id also does (the complaint is the root of
    that thread); on Instagram and Facebook every comment shares the post's conversation, so there it
    proves nothing."""
    current, steps = reply.reply_to_id, 0
    while current is not None and steps < MAX_CHAIN:
        if current == complaint.id:
            return True
        current, steps = parents.get(current), steps + 1
    return complaint.platform == Platform.X and reply.conversation_id == complaint.id


def status_of(clock: AgencyClock, now: datetime) -> ResponseStatus:
    if clock.first_response_s is not None:
        return "answered_late" if clock.first_response_s > clock.sla_s else "answered"
    if clock.mark is None and now >= clock.due_at:
        return "overdue"
    return "open"
