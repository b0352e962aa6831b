"""Loopback stand-ins for what alerts are sent to, speaking the real wire formats: a webhook receiver that
verifies Standard Webhooks signatures, the Telegram Bot API's ``sendMessage`` and ``sendDocument`` (a
multipart/form-data upload), the WhatsApp Cloud API's
``messages``, a Slack incoming webhook, and an SMTP server with STARTTLS on a test certificate."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import trustme
from aiohttp import BodyPartReader, web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Standard Webhooks verification, written from the spec (not with the sender's code)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [s.split(",", 1)[1] for s in headers["webhook-signature"].split() if s.startswith("v1,")]
    fresh = abs(time.time() - int(headers["webhook-timestamp"])) < 300
    return fresh and any(hmac.compare_digest(expected, o) for o in offered)


@dataclass
class Received:
    channel: str
    name: str
    at: float
    headers: dict[str, str]
    body: bytes
    verified: bool = True

    def json(self) -> Any:
        return json.loads(self.body)


class _TagCheck(HTMLParser):
    """Telegram's HTML mode takes only a few tags; anything else (from a post's text) means bad escaping."""

    ALLOWED = frozenset({"b", "i", "a", "code", "pre", "u", "s"})

    def __init__(self) -> None:
        super().__init__()
        self.bad: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.ALLOWED:
            self.bad.append(tag)


def alerts_of(received: list[Received]) -> list[dict[str, Any]]:
    """The alerts webhook deliveries carried: one alert per body, or a grouped ``{"alerts": [...]}``."""
    out: list[dict[str, Any]] = []
    for r in received:
        body = r.json()
        out += body.get("alerts", [body])
    return out


@dataclass
class Receivers:
    """One aiohttp server on loopback; ``status`` makes a named webhook answer e.g. 500."""

    received: list[Received] = field(default_factory=list)
    status: dict[str, int] = field(default_factory=dict)
    url: str = ""
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None

    def of(self, channel: str, name: str | None = None) -> list[Received]:
        return [r for r in self.received if r.channel == channel and (name is None or r.name == name)]

    async def _hook(self, request: web.Request) -> web.Response:
        name, body = request.match_info["name"], await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            ok = verify(SECRET, headers, body)
        except (KeyError, ValueError):
            ok = False
        self.received.append(Received("webhook", name, time.time(), headers, body, ok))
        if not ok:
            return web.Response(status=401, text="bad signature")
        return web.Response(status=self.status.get(name, 204))

    async def _telegram(self, request: web.Request) -> web.Response:
        body = await request.read()
        payload = json.loads(body)
        check = _TagCheck()
        check.feed(payload.get("text", ""))
        ok = bool(payload.get("chat_id")) and bool(payload.get("text")) and not check.bad
        self.received.append(Received("telegram", request.match_info["token"], time.time(), {}, body, ok))
        if not ok:
            return web.json_response(
                {"ok": False, "error_code": 400, "description": "Bad Request"}, status=400
            )
        return web.json_response(
            {"ok": True, "result": {"message_id": len(self.received), "chat": {"id": 1}}}
        )

    async def _telegram_document(self, request: web.Request) -> web.Response:
        """``sendDocument``: multipart/form-data with ``chat_id``, an optional HTML ``caption`` and the file
        in ``document``; received as channel ``telegram-document``, the body being the file's bytes."""
        fields: dict[str, str] = {}
        content = b""
        ok = request.content_type == "multipart/form-data"
        if ok:
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                assert isinstance(part, BodyPartReader)
                if part.name == "document" and part.filename:
                    fields["filename"] = part.filename
                    fields["content-type"] = part.headers.get("Content-Type", "")
                    content = await part.read()
                elif part.name:
                    fields[part.name] = await part.text()
        check = _TagCheck()
        check.feed(fields.get("caption", ""))
        ok = ok and bool(fields.get("chat_id")) and bool(content) and "filename" in fields and not check.bad
        self.received.append(
            Received("telegram-document", request.match_info["token"], time.time(), fields, content, ok)
        )
        if not ok:
            return web.json_response(
                {
                    "ok": False,
                    "error_code": 400,
                    "description": "Bad Request: there is no document in the request",
                },
                status=400,
            )
        document = {
            "file_name": fields["filename"],
            "file_id": f"f{len(self.received)}",
            "file_size": len(content),
        }
        return web.json_response(
            {"ok": True, "result": {"message_id": len(self.received), "document": document}}
        )

    async def _whatsapp(self, request: web.Request) -> web.Response:
        body = await request.read()
        payload = json.loads(body)
        ok = (
            request.headers.get("authorization", "").startswith("Bearer ")
            and payload.get("messaging_product") == "whatsapp"
            and payload.get("type") == "text"
            and bool(payload.get("text", {}).get("body"))
        )
        self.received.append(Received("whatsapp", request.match_info["phone"], time.time(), {}, body, ok))
        if not ok:
            return web.json_response({"error": {"message": "invalid", "code": 100}}, status=400)
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"wa_id": payload["to"]}],
                "messages": [{"id": "wamid.1"}],
            }
        )

    async def _slack(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append(Received("slack", request.match_info["name"], time.time(), {}, body))
        return web.Response(text="ok")

    def start(self) -> Receivers:
        app = web.Application()
        app.router.add_post("/hook/{name}", self._hook)
        app.router.add_post("/bot{token}/sendMessage", self._telegram)
        app.router.add_post("/bot{token}/sendDocument", self._telegram_document)
        app.router.add_post("/wa/{phone}/messages", self._whatsapp)
        app.router.add_post("/slack/{name}", self._slack)
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            runner = web.AppRunner(app)
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            port = runner.addresses[0][1]
            self.url = f"http://127.0.0.1:{port}"
            self._runner = runner
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())

        threading.Thread(target=run, daemon=True).start()
        assert ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: object, session: Session, envelope: Envelope) -> str:
        assert session.ssl is not None, "mail sent without STARTTLS"
        self.messages.append(message_from_bytes(envelope.content))  # type: ignore[arg-type]
        return "250 OK"


def _login(server: object, session: Session, envelope: Envelope, mechanism: str, data: object) -> AuthResult:
    ok = isinstance(data, LoginPassword) and data.login == b"pantau" and data.password == b"s3cret"
    return AuthResult(success=ok)


class SmtpServer:
    """aiosmtpd on loopback requiring STARTTLS (trustme certificate) and a login; ``url`` for the sender."""

    def __init__(self, directory: Path) -> None:
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self.cafile = directory / "ca.pem"
        ca.cert_pem.write_to_path(str(self.cafile))
        import ssl

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        self.inbox = _Inbox()
        self.controller = Controller(
            self.inbox,
            hostname="127.0.0.1",
            port=0,
            tls_context=context,
            require_starttls=True,
            authenticator=_login,
            auth_require_tls=True,
        )

    def start(self) -> SmtpServer:
        self.controller.port = _free_port()
        self.controller.start()
        return self

    @property
    def url(self) -> str:
        return f"smtp://pantau:s3cret@127.0.0.1:{self.controller.port}?cafile={self.cafile}"

    def stop(self) -> None:
        self.controller.stop()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
