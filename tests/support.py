"""Test support shared by every test folder: a real HTTP server for an ASGI app, and
`Upstream`, a scripted stand-in for the collector that records every request."""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import uvicorn

from steward.broker import free_port


class Served:
    """An ASGI app under uvicorn on a loopback port (a free one unless given), in a thread;
    `config` goes to uvicorn (e.g. `ServerTls.uvicorn_kwargs()` to serve HTTPS)."""

    def __init__(self, app: Any, port: int | None = None, **config: Any) -> None:
        self.port = port or free_port()
        scheme = "https" if config.get("ssl_certfile") else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", lifespan="off",
                                                    **config))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass(frozen=True)
class Seen:
    """One request an `Upstream` received: `raw` as sent, `body` decompressed."""

    path: str
    headers: dict[str, str]
    """Header names in lower case."""
    raw: bytes
    at: float
    """time.monotonic() on arrival."""

    @property
    def body(self) -> bytes:
        return gzip.decompress(self.raw) if self.headers.get("content-encoding") == "gzip" \
            else self.raw

    def ids(self) -> list[str]:
        return [r["id"] for r in json.loads(self.body)["records"]]


Answer = Callable[[Seen], tuple[int, dict[str, str], bytes]]
"""What an `Upstream` answers a request: (status, headers, body)."""


def ok(seen: Seen) -> tuple[int, dict[str, str], bytes]:
    """What the collector answers a good request: 200, everything accepted."""
    if seen.path == "/v1/inferences":
        n = len(seen.ids())
        return 200, {"Content-Type": "application/json"}, json.dumps(
            {"accepted": n, "rejected": 0, "errors": []}).encode()
    return 200, {"Content-Type": "application/x-protobuf"}, b""


class Upstream:
    """A stand-in for the collector on loopback (a free port unless given): a plain
    http.server that records each request in `seen` and answers with `answer`."""

    def __init__(self, answer: Answer = ok, port: int = 0) -> None:
        self.answer = answer
        self.seen: list[Seen] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                seen = Seen(self.path, {k.lower(): v for k, v in self.headers.items()}, raw,
                            time.monotonic())
                upstream.seen.append(seen)
                status, headers, body = upstream.answer(seen)
                try:
                    self.send_response(status)
                    for k, v in {**headers, "Content-Length": str(len(body))}.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client was killed while we held its answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_for(predicate: Callable[[], Any], timeout_s: float = 30.0, what: str = "",
             interval_s: float = 0.1) -> Any:
    """Poll until `predicate` returns something truthy; fail with `what` after the timeout."""
    import pytest

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    pytest.fail(f"timed out after {timeout_s}s waiting for {what or predicate}")
