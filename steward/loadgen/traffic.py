"""Simulated edge and cloud nodes sending telemetry at a set rate: the load generator's
senders.

Bodies are rendered once per node and stamped per request (record ids and event time
are fixed-width placeholders replaced in the bytes), so the sender spends its CPU on
sending, not on building JSON: on a shared machine the generator must leave the cores
to the stack it measures. Every record id is unique per run, so nothing is deduplicated
away downstream.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from steward.demo import latency_request

SEQ = b"SEQ_SEQ_SEQ_"
TS = b"TS_TS_TS_TS_TS_TS_TS_TS_TS_TS_TS"
"""Placeholders as wide as what replaces them: 12 digits; an ISO time with microseconds
and `+00:00` (32 characters)."""


def stamp(now: float) -> bytes:
    return datetime.fromtimestamp(now, UTC).isoformat(timespec="microseconds").encode()


@dataclass(frozen=True)
class Node:
    """One simulated node: where it is and which models it serves."""

    name: str
    site: str
    tier: str
    models: tuple[str, ...]


def fleet(edge: int, cloud: int, models: int, run: str) -> list[Node]:
    """`edge` edge nodes (four to a site) and `cloud` cloud nodes (three regions), each
    serving up to four of `models` models."""
    nodes = []
    for i in range(edge + cloud):
        tier = "edge" if i < edge else "cloud"
        site = f"edge-{i // 4:03d}" if tier == "edge" else f"region-{i % 3}"
        served = tuple(f"model-{(i + k) % models:03d}" for k in range(min(4, models)))
        nodes.append(Node(f"{run}-{tier}-{i:04d}", site, tier, served))
    return nodes


def json_template(node: Node, per_request: int, run: str) -> bytes:
    """A `/v1/inferences` body for `node` with SEQ/TS placeholders."""
    records = []
    for i in range(per_request):
        records.append({"id": f"{run}-{node.name}-{SEQ.decode()}-{i}",
                        "model": node.models[i % len(node.models)], "version": "1.0.0",
                        "site": node.site, "tier": node.tier, "node": node.name,
                        "ts": TS.decode(), "latency_ms": round(8 + (i * 7919 % 400) / 10, 1),
                        "features": {"amount": float(i % 97), "channel": "pos"},
                        "prediction": (i % 10) / 10})
    return json.dumps({"records": records}, separators=(",", ":")).encode()


def otlp_body(node: Node, points: int, now: float) -> bytes:
    """A `/v1/metrics` protobuf export: one latency histogram point per model served, per
    second back from `now`, `points` in all (ids depend on the times: unique per request)."""
    end = int(now * 1e9)
    req = latency_request("1.0.0", node.name, [10.0 + i % 50 for i in range(20)],
                          end - 1_000_000_000, end)
    res = req.resource_metrics[0]
    for kv in res.resource.attributes:
        if kv.key == "service.name":
            kv.value.string_value = node.models[0]
        if kv.key == "cloud.region":
            kv.value.string_value = node.site
        if kv.key == "steward.tier":
            kv.value.string_value = node.tier
    template = res.scope_metrics[0].metrics[0].histogram.data_points[0]
    dps = res.scope_metrics[0].metrics[0].histogram.data_points
    for i in range(1, points):
        extra = dps.add()
        extra.CopyFrom(template)
        extra.time_unix_nano = end - i * 1000
        extra.start_time_unix_nano = extra.time_unix_nano - 1_000_000_000
    return req.SerializeToString()


@dataclass
class Counts:
    """What the senders did; read by the reporter while they run (ints only grow)."""

    accepted: int = 0
    otlp_points: int = 0
    rejected: int = 0
    requests: int = 0
    refused: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    behind: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class Senders:
    """`workers` threads sharing one schedule: request n goes out at start + n / req_per_s
    (at once when behind, counted), each to the next node in turn; every `otlp_every`-th
    request is an OTLP protobuf export instead of a JSON batch."""

    def __init__(self, url: str, nodes: list[Node], rate: float, per_request: int,
                 workers: int, otlp_every: int, run: str, token: str | None = None) -> None:
        self.url, self.nodes, self.per_request = url, nodes, per_request
        self.interval = per_request / rate
        self.workers, self.otlp_every = workers, otlp_every
        self.templates = [json_template(n, per_request, run) for n in nodes]
        self.headers = {"authorization": f"Bearer {token}"} if token else {}
        self.counts = Counts()
        self._next = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.started = self.stopped = 0.0

    def start(self, seconds: float) -> Senders:
        self.started = time.monotonic()
        self.deadline = self.started + seconds
        self._threads = [threading.Thread(target=self._work, daemon=True, name=f"sender-{k}")
                         for k in range(self.workers)]
        for t in self._threads:
            t.start()
        return self

    def join(self) -> None:
        for t in self._threads:
            t.join()
        self.stopped = time.monotonic()

    def stop(self) -> None:
        self._stop.set()
        self.join()

    def _claim(self) -> int | None:
        with self._lock:
            n, self._next = self._next, self._next + 1
        at = self.started + n * self.interval
        if at >= self.deadline:
            return None
        wait = at - time.monotonic()
        if wait > 0:
            if self._stop.wait(wait):
                return None
        elif wait < -self.interval:
            with self.counts.lock:
                self.counts.behind += 1
        return n

    def _work(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30, headers=self.headers) as client:
            while not self._stop.is_set():
                n = self._claim()
                if n is None:
                    return
                node = self.nodes[n % len(self.nodes)]
                try:
                    self._send(client, n, node)
                except httpx.HTTPError:
                    with self.counts.lock:
                        self.counts.errors += 1

    def _send(self, client: httpx.Client, n: int, node: Node) -> None:
        now = time.time()
        otlp = self.otlp_every > 0 and n % self.otlp_every == self.otlp_every - 1
        if otlp:
            resp = client.post("/v1/metrics", content=otlp_body(node, self.per_request, now),
                               headers={"content-type": "application/x-protobuf"})
        else:
            body = self.templates[n % len(self.nodes)].replace(SEQ, b"%012d" % n)
            resp = client.post("/v1/inferences", content=body.replace(TS, stamp(now)),
                               headers={"content-type": "application/json"})
        with self.counts.lock:
            self.counts.requests += 1
            if resp.status_code != 200:
                self.counts.refused[resp.status_code] = \
                    self.counts.refused.get(resp.status_code, 0) + 1
            elif otlp:
                self.counts.otlp_points += self.per_request
            else:
                answer = resp.json()
                self.counts.accepted += answer["accepted"]
                self.counts.rejected += answer["rejected"]
