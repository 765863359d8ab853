"""Agent unit-test fixtures: real SQLite files, real HTTP servers on loopback, no broker.

`Upstream` stands in for the collector: a plain http.server that records every
request (body decompressed) and answers with whatever the test's function says.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from collector.agent.forwarder import Forwarder
from collector.agent.metrics import AgentMetrics
from collector.agent.settings import AgentSettings
from collector.agent.spool import Spool
from steward.broker import free_port

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def record(rid: str | None, i: int = 0, **fields: Any) -> dict[str, Any]:
    """A valid inference record (`rid` None: the agent derives the id)."""
    out = {"model": "fraud-detector", "version": "1.5.0", "site": "store-042", "tier": "edge",
           "ts": (T0 + timedelta(milliseconds=i)).isoformat(), "latency_ms": 10.0 + i % 7,
           **fields}
    return out if rid is None else {"id": rid, **out}


@dataclass(frozen=True)
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def ids(self) -> list[str]:
        return [r["id"] for r in json.loads(self.body)["records"]]


Answer = Callable[[Seen], tuple[int, dict[str, str], bytes]]


def ok(seen: Seen) -> tuple[int, dict[str, str], bytes]:
    """What the collector answers a good request: 200, everything accepted."""
    if seen.path == "/v1/inferences":
        n = len(seen.ids())
        return 200, {"Content-Type": "application/json"}, json.dumps(
            {"accepted": n, "rejected": 0, "errors": []}).encode()
    return 200, {"Content-Type": "application/x-protobuf"}, b""


class Upstream:
    def __init__(self, answer: Answer = ok, port: int = 0) -> None:
        self.answer = answer
        self.seen: list[Seen] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                gz = self.headers.get("content-encoding") == "gzip"
                seen = Seen(self.path, {k.lower(): v for k, v in self.headers.items()},
                            gzip.decompress(raw) if gz else raw, time.monotonic())
                upstream.seen.append(seen)
                status, headers, body = upstream.answer(seen)
                self.send_response(status)
                for k, v in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def upstream() -> Iterator[Callable[..., Upstream]]:
    started: list[Upstream] = []

    def start(answer: Answer = ok, port: int = 0) -> Upstream:
        started.append(Upstream(answer, port))
        return started[-1]
    yield start
    for u in started:
        u.stop()


def settings(tmp_path: Path, url: str = "http://127.0.0.1:9", **kw: Any) -> AgentSettings:
    """Fast settings for tests: small backoff, the spool under tmp_path."""
    base = {"collector_url": url, "spool_dir": tmp_path / "spool", "port": free_port(),
            "backoff_base_s": 0.01, "backoff_cap_s": 0.05}
    return AgentSettings(**{**base, **kw})


@dataclass
class Parts:
    """A forwarder on its own spool, driven step by step."""

    spool: Spool
    forwarder: Forwarder
    registry: CollectorRegistry

    def value(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def drain(self, max_steps: int = 200) -> None:
        """Step until the spool has nothing sendable now."""
        for _ in range(max_steps):
            delay = self.forwarder.step()
            if delay is None:
                return
            time.sleep(min(delay, 0.5))
        pytest.fail("the forwarder did not drain the spool")


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[Callable[..., Parts]]:
    made: list[Parts] = []

    def make(url: str, monotonic: Callable[[], float] = time.monotonic, **kw: Any) -> Parts:
        s = settings(tmp_path, url, **kw)
        s.spool_dir.mkdir(exist_ok=True)
        spool = Spool(s.spool_dir / "spool.sqlite3", s.max_spool_bytes, s.full_policy)
        registry = CollectorRegistry()
        metrics = AgentMetrics(registry)
        metrics.watch(spool.totals, time.time)
        made.append(Parts(spool, Forwarder(s, spool, metrics, monotonic=monotonic), registry))
        return made[-1]
    yield make
    for p in made:
        p.forwarder.client.close()
        p.spool.close()
