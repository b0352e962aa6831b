"""``pantau ingest serve``: a push endpoint for collectors run by others (a partner's scraper, a
newsroom's export). ``POST /ingest`` with a bearer token takes JSON (one post or an array) or NDJSON, passes
every post through the same gate as ``pantau produce``, and answers only once the broker has them.

With a Meta app secret and verify token set, ``/webhooks/meta`` takes a Facebook Page's webhook deliveries
and sends a tombstone for every comment or post they report removed (``pipeline/sources/webhooks.py``)."""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from kafka import KafkaProducer
from kafka.errors import KafkaError

from pipeline.sources import webhooks
from pipeline.sources.sender import encode_post, send_tombstones
from pipeline.validation import Rejected, deleted_post_key, parse_json, validate_raw_post

log = logging.getLogger("pantau.ingest")

MAX_BODY_BYTES = 10 * 1024 * 1024
REQUEST_TIMEOUT = 30.0
"""Seconds a request may sit idle on its socket (a body shorter than its Content-Length, a stalled client)."""
PATH = "/ingest"


@dataclass
class Outcome:
    accepted: list[tuple[str, bytes | None]] = field(default_factory=list)
    """(key, value) of the posts to send; value None for a deletion (a tombstone)."""
    rejected: list[dict[str, Any]] = field(default_factory=list)
    """``{"line": L, "reason": R}``: the line of NDJSON, or the 1-based position in a JSON array."""

    def body(self, sent: int) -> bytes:
        return json.dumps({"accepted": sent, "rejected": self.rejected}, ensure_ascii=False).encode()


def _items(body: bytes, content_type: str) -> list[tuple[int, Any, str | None]]:
    """(line, decoded item, error) for every post in the body."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return [(1, None, f"not UTF-8: {exc.reason} at byte {exc.start}")]
    if not text.strip():
        return []
    if "ndjson" not in content_type and "jsonl" not in content_type:
        try:
            whole = parse_json(text)
        except ValueError as exc:
            if "Extra data" not in str(exc):  # one document, and a bad one: say why once
                return [(1, None, str(exc))]
            # more than one JSON document: read as NDJSON
        else:
            if isinstance(whole, list):
                return [(n, item, None) for n, item in enumerate(whole, start=1)]
            return [(1, whole, None)]
    found: list[tuple[int, Any, str | None]] = []
    # "\n" only: str.splitlines also breaks at U+2028, U+0085 …, which JSON strings may hold unescaped
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            found.append((number, parse_json(line), None))
        except ValueError as exc:
            found.append((number, None, str(exc)))
    return found


def read_body(body: bytes, content_type: str) -> Outcome:
    outcome = Outcome()
    for line, item, error in _items(body, content_type):
        if error is None and not isinstance(item, dict):
            error = f"expected a JSON object, got {type(item).__name__}"
        if error is not None:
            outcome.rejected.append({"line": line, "reason": error})
            continue
        if item.get("deleted") is True:  # {"id", "platform", "deleted": true}: the post was deleted
            named = f"{item.get('platform')}:{item.get('id')}"
            key = deleted_post_key(named.encode("utf-8", "replace"), None)
            if key is None:
                outcome.rejected.append(
                    {"line": line, "reason": "a deletion needs the post's id and platform"}
                )
            else:
                outcome.accepted.append((key, None))
            continue
        try:
            outcome.accepted.append(encode_post(validate_raw_post(item)))
        except Rejected as exc:
            outcome.rejected.append({"line": line, "reason": exc.reason})
    if not outcome.accepted and not outcome.rejected:
        outcome.rejected.append({"line": 1, "reason": "no posts in the body"})
    return outcome


def _read(request: BaseHTTPRequestHandler, length: int) -> bytes | None:
    """The body, or None (the connection closed) when the client stops sending before ``length`` bytes."""
    try:
        body = request.rfile.read(length)
    except OSError:  # the socket timed out or was reset
        body = b""
    if len(body) < length:
        log.warning("ingest: %s sent %d of %d body bytes", request.address_string(), len(body), length)
        request.close_connection = True
        return None
    return body


@dataclass(frozen=True)
class MetaWebhook:
    app_secret: str
    """Signs every delivery (``X-Hub-Signature-256``)."""
    verify_token: str
    """What Meta's subscription check must carry (chosen by us, entered in the app's Webhooks settings)."""


class PushServer:
    def __init__(
        self,
        host: str,
        port: int,
        token: str,
        producer: KafkaProducer,
        topic: str,
        meta: MetaWebhook | None = None,
    ) -> None:
        self.token = token.encode()
        self.producer = producer
        self.topic = topic
        self.meta = meta
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = REQUEST_TIMEOUT  # a client that sends less body than it announced is cut off

            def do_POST(self) -> None:
                try:
                    server.handle(self)
                except Exception:  # a bug, not bad input (that is answered 4xx): say so, keep serving
                    log.exception("ingest: %s %s failed", self.command, self.path[:200])
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        server.answer(self, 500, b'{"error": "the request failed; the server logged why"}')

            def do_GET(self) -> None:
                if self.path.split("?")[0] == webhooks.PATH and server.meta is not None:
                    server.verify(self)
                elif self.path == "/healthz":
                    server.answer(self, 200, b'{"ok": true}')
                else:
                    server.answer(self, 405 if self.path == PATH else 404, b'{"error": "POST /ingest"}')

            def log_message(self, format: str, *args: Any) -> None:
                log.info("%s %s", self.address_string(), format % args)

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def serve(self, stop: threading.Event) -> None:
        thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        thread.start()
        stop.wait()
        self.httpd.shutdown()
        self.httpd.server_close()

    def answer(self, request: BaseHTTPRequestHandler, status: int, body: bytes, **headers: str) -> None:
        request.send_response(status)
        request.send_header("content-type", "application/json")
        request.send_header("content-length", str(len(body)))
        for name, value in headers.items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(body)

    def verify(self, request: BaseHTTPRequestHandler) -> None:
        """Meta's subscription check: echo ``hub.challenge`` when the verify token is ours."""
        assert self.meta is not None
        params = dict(parse_qsl(urlsplit(request.path).query))
        answer = webhooks.challenge(params, self.meta.verify_token)
        if answer is None:
            self.answer(request, 403, b'{"error": "needs hub.mode=subscribe and our hub.verify_token"}')
        elif not answer:
            self.answer(request, 400, b'{"error": "hub.challenge is missing"}')
        else:
            request.send_response(200)
            request.send_header("content-type", "text/plain")
            request.send_header("content-length", str(len(answer.encode())))
            request.end_headers()
            request.wfile.write(answer.encode())

    def body(self, request: BaseHTTPRequestHandler) -> bytes | None:
        """The request's body by its Content-Length, or None once the error is answered (the connection
        is then closed: a body that was not read cannot be skipped)."""
        try:
            length = int(request.headers.get("content-length", ""))
        except ValueError:
            request.close_connection = True
            self.answer(request, 411, b'{"error": "Content-Length is required"}')
            return None
        if not 0 <= length <= MAX_BODY_BYTES:
            request.close_connection = True
            error = f"body over {MAX_BODY_BYTES} bytes" if length > 0 else "Content-Length must be 0 or more"
            self.answer(request, 413 if length > 0 else 400, json.dumps({"error": error}).encode())
            return None
        return _read(request, length)

    def webhook(self, request: BaseHTTPRequestHandler) -> None:
        """A signed delivery: tombstones for what it reports removed, answered 200 after the broker's ack
        (Meta delivers again what is not answered 200)."""
        assert self.meta is not None
        body = self.body(request)
        if body is None:
            return
        if not webhooks.signed(body, request.headers.get("x-hub-signature-256"), self.meta.app_secret):
            self.answer(request, 401, b'{"error": "X-Hub-Signature-256 does not match the app secret"}')
            return
        try:
            payload = parse_json(body.decode("utf-8"))
        except ValueError as exc:  # UnicodeDecodeError too
            self.answer(request, 400, json.dumps({"error": f"not JSON: {exc}"[:300]}).encode())
            return
        keys = [
            k for k in webhooks.removed_keys(payload) if deleted_post_key(k.encode("utf-8", "replace"), None)
        ]
        try:
            removed = send_tombstones(self.producer, self.topic, keys)
        except KafkaError as exc:
            log.error("ingest: Kafka refused the tombstones: %r", exc)
            self.answer(request, 503, json.dumps({"error": f"Kafka: {exc}"}).encode())
            return
        self.answer(request, 200, json.dumps({"removed": removed}).encode())

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        if request.path.split("?")[0] == webhooks.PATH and self.meta is not None:
            self.webhook(request)
            return
        if request.path.split("?")[0] != PATH:
            self.answer(request, 404, b'{"error": "POST /ingest"}')
            return
        given = request.headers.get("authorization", "")
        if not given.startswith("Bearer ") or not hmac.compare_digest(given[7:].strip().encode(), self.token):
            request.close_connection = True
            self.answer(
                request,
                401,
                b'{"error": "a valid bearer token is required"}',
                **{"www-authenticate": "Bearer"},
            )
            return
        body = self.body(request)
        if body is None:
            return
        outcome = read_body(body, request.headers.get("content-type", ""))
        try:
            futures = [self.producer.send(self.topic, key=k.encode(), value=v) for k, v in outcome.accepted]
            self.producer.flush()
            for future in futures:
                future.get(timeout=60)
        except KafkaError as exc:
            log.error("ingest: Kafka refused the posts: %r", exc)
            self.answer(
                request, 503, json.dumps({"error": f"Kafka: {exc}"}).encode(), **{"retry-after": "30"}
            )
            return
        status = 202 if outcome.accepted else 400
        self.answer(request, status, outcome.body(len(outcome.accepted)))
