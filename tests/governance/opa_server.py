"""A test HTTP server that speaks OPA's REST Data API, backed by the embedded engine.

No OPA binary is available where these tests run, so the OPA client is tested against
this server; it follows OPA's documented behaviour, not OPA's code:

- `POST /v1/data/{path}` with `{"input": ...}` -> 200 `{"result": ...}`; an undefined
  document -> 200 `{}` (no `result` key); `decision_id` in the body when decision
  logging is on; a body without `input` evaluates with no input and carries OPA's
  `warning` (`api_usage_warning`);
- `GET /v1/data/{path}` (input, if any, as the `input` query parameter, JSON);
- a body that is not JSON -> 400 `{"code": "invalid_parameter", "message": ...}`;
- an evaluation error -> 500 `{"code": "internal_error", "message": ...}`;
- `GET /health` -> 200 `{}`.

Knobs for failure tests: `delay_s` (sleep before answering), `fail_status` (answer
every data request with that status).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from steward.governance.embedded import EmbeddedEngine


class OpaTestServer:
    def __init__(self, rules_dir: str | Path, *, decision_logs: bool = True) -> None:
        self.engine = EmbeddedEngine(rules_dir)
        self.decision_logs = decision_logs
        self.delay_s = 0.0
        self.fail_status: int | None = None
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _data(self, path: str, body: dict[str, Any] | None) -> None:
                if server.delay_s:
                    time.sleep(server.delay_s)
                if server.fail_status is not None:
                    self._send(server.fail_status, {"code": "internal_error",
                                                    "message": "injected failure"})
                    return
                server.requests.append({"path": path, "body": body})
                inp = body.get("input") if body else None
                ev = server.engine.evaluate(path, inp if inp is not None else {})
                if ev.error:
                    self._send(500, {"code": "internal_error", "message": ev.error})
                    return
                out: dict[str, Any] = {}
                if ev.result is not None:
                    out["result"] = ev.result
                if server.decision_logs:
                    out["decision_id"] = str(uuid.uuid4())
                if body is not None and "input" not in body:
                    out["warning"] = {"code": "api_usage_warning",
                                      "message": "'input' key missing from the request"}
                self._send(200, out)

            def do_POST(self) -> None:
                url = urlsplit(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if url.path == "/v1/data" or url.path.startswith("/v1/data/"):
                    try:
                        body = json.loads(raw) if raw else {}
                        if not isinstance(body, dict):
                            raise ValueError("body must be an object")
                    except ValueError as exc:
                        message = f"body contains malformed input document: {exc}"
                        self._send(400, {"code": "invalid_parameter", "message": message})
                        return
                    self._data(url.path.removeprefix("/v1/data").strip("/"), body)
                else:
                    self._send(404, {"code": "resource_not_found", "message": "not found"})

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path == "/health":
                    self._send(200, {})
                elif url.path == "/v1/data" or url.path.startswith("/v1/data/"):
                    query = parse_qs(url.query)
                    body = {"input": json.loads(query["input"][0])} if "input" in query else None
                    self._data(url.path.removeprefix("/v1/data").strip("/"), body)
                else:
                    self._send(404, {"code": "resource_not_found", "message": "not found"})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> OpaTestServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
