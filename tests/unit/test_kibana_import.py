"""`pantau kibana import` against a loopback stand-in that speaks Kibana's saved-objects import API:
it checks the request the way Kibana does (path, overwrite, kbn-xsrf, a multipart NDJSON file) and answers
with Kibana's response shape."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from email import message_from_bytes
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.kibana.saved_objects import saved_objects
from pipeline.settings import get_settings


class StandIn:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.refuse: dict[str, dict[str, Any]] = {}
        """object id → the ``error`` Kibana reports for it"""
        self.space = "default"


def _handler(state: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            record = {"path": url.path, "query": parse_qs(url.query), "headers": dict(self.headers)}
            state.requests.append(record)
            space_prefix = "" if state.space == "default" else f"/s/{state.space}"
            if url.path != f"{space_prefix}/api/saved_objects/_import":
                return self._answer(404, {"statusCode": 404, "error": "Not Found", "message": "Not Found"})
            if "kbn-xsrf" not in {k.lower() for k in self.headers}:
                return self._answer(
                    400,
                    {
                        "statusCode": 400,
                        "error": "Bad Request",
                        "message": "Request must contain a kbn-xsrf header.",
                    },
                )
            head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
            message = message_from_bytes(head + body, policy=HTTP)
            parts = [
                p for p in message.iter_parts() if p.get_param("name", header="content-disposition") == "file"
            ]
            if (
                not message.is_multipart()
                or len(parts) != 1
                or not parts[0].get_filename("").endswith(".ndjson")
            ):
                return self._answer(
                    415, {"statusCode": 415, "error": "Unsupported Media Type", "message": "expected a file"}
                )
            objects = [
                json.loads(line) for line in parts[0].get_payload(decode=True).decode().splitlines() if line
            ]
            record["objects"] = objects
            errors = [
                {
                    "id": o["id"],
                    "type": o["type"],
                    "title": o["attributes"].get("title"),
                    "meta": {},
                    "error": state.refuse[o["id"]],
                }
                for o in objects
                if o["id"] in state.refuse
            ]
            results = [
                {"id": o["id"], "type": o["type"], "meta": {}} for o in objects if o["id"] not in state.refuse
            ]
            answer: dict[str, Any] = {
                "success": not errors,
                "successCount": len(results),
                "successResults": results,
            }
            if errors:
                answer["errors"] = errors
            return self._answer(200, answer)

    return Handler


@pytest.fixture
def kibana() -> Iterator[tuple[str, StandIn]]:
    state = StandIn()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_import_sends_what_kibana_expects(kibana: tuple[str, StandIn]) -> None:
    url, state = kibana
    result = CliRunner().invoke(app, ["kibana", "import", "--url", url])
    assert result.exit_code == 0, result.output
    (request,) = state.requests
    assert request["query"] == {"overwrite": ["true"]}
    assert [(o["type"], o["id"]) for o in request["objects"]] == [
        (o["type"], o["id"]) for o in saved_objects()
    ]
    assert f"imported {len(saved_objects())} objects" in result.output


def test_import_uses_the_setting_and_a_space(
    kibana: tuple[str, StandIn], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, state = kibana
    state.space = "diskominfo"
    monkeypatch.setenv("PANTAU_KIBANA_URL", url + "/")
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["kibana", "import", "--space", "diskominfo"])
    assert result.exit_code == 0, result.output
    assert state.requests[0]["path"] == "/s/diskominfo/api/saved_objects/_import"


def test_objects_kibana_refuses_are_reported_and_fail_the_command(kibana: tuple[str, StandIn]) -> None:
    url, state = kibana
    state.refuse["pantau-agency"] = {
        "type": "missing_references",
        "references": [{"type": "index-pattern", "id": "pantau-posts"}],
    }
    result = CliRunner().invoke(app, ["kibana", "import", "--url", url])
    assert result.exit_code == 1
    assert "dashboard pantau-agency (Pantau Banten: per instansi): missing_references" in result.output
    assert "refused 1 objects" in result.output


def test_a_refused_request_fails_with_kibanas_message(kibana: tuple[str, StandIn]) -> None:
    url, _ = kibana
    result = CliRunner().invoke(app, ["kibana", "import", "--url", url, "--space", "nowhere"])
    assert result.exit_code == 1
    assert "HTTP 404" in result.output


def test_no_url_is_a_usage_error_and_no_kibana_a_clear_one() -> None:
    assert CliRunner().invoke(app, ["kibana", "import"]).exit_code == 2
    result = CliRunner().invoke(app, ["kibana", "import", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 1 and "could not reach Kibana" in result.output


def test_export_writes_the_ndjson(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "objects.ndjson"
    assert CliRunner().invoke(app, ["kibana", "export", str(out)]).exit_code == 0
    assert len(out.read_text().splitlines()) == len(saved_objects())
