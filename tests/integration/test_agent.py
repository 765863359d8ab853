"""The edge agent end to end: outages, kill -9, a full spool, Retry-After, a poisoned entry.

Real SQLite spools, the real collector and the embedded broker (through the
fixtures), real HTTP on loopback. Where a test needs the collector to misbehave
on cue, a small stand-in server plays it (or fronts the real one).
"""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from collector.agent.main import Agent
from collector.agent.settings import AgentSettings
from collector.app import create_app as create_collector
from collector.publish import Publisher
from collector.settings import CollectorSettings
from steward import topics as T
from steward.auth import new_token
from steward.broker import free_port
from steward.bus.producer import Producer
from tests.support import Answer, Seen, Served, Upstream, ok

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PB, JSON = "application/x-protobuf", "application/json"


def records(prefix: str, n: int) -> list[dict[str, Any]]:
    return [{"id": f"{prefix}-{i:04d}", "model": "fraud-detector", "version": "1.5.0",
             "site": "store-042", "tier": "edge", "node": "edge-box-7",
             "ts": (T0 + timedelta(milliseconds=i)).isoformat(), "latency_ms": 10.0 + i % 13,
             "features": {"amount": 12.5 + i, "country": "DE"}, "prediction": 0.1}
            for i in range(n)]


def gauge_export(n: int, start: int) -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.add(key="service.name").value.string_value = "fraud-detector"
    rm.resource.attributes.add(key="steward.site").value.string_value = "store-042"
    metric = rm.scope_metrics.add().metrics.add(name="steward.inference.latency", unit="ms")
    for i in range(start, start + n):
        metric.gauge.data_points.add(time_unix_nano=1767225600000000000 + i * 10 ** 6,
                                     as_double=10.0 + i)
    return req


def ids_on(topic_reader: Callable, topic: str) -> list[str]:
    return [r["id"] for m in topic_reader(topic) for r in json.loads(m["value"])["records"]]


def metric(url: str, name: str) -> float:
    """One sample from the agent's /metrics, e.g. 'steward_agent_spool_entries'."""
    text = httpx.get(f"{url}/metrics").text
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


@pytest.fixture
def collector_on(kafka, services) -> Callable[[int], Served]:
    """The real collector on a port chosen beforehand (the agent already points at it)."""
    def start(port: int) -> Served:
        settings = CollectorSettings(kafka=kafka)
        producer = Producer(kafka)
        services.append(producer)
        publisher = Publisher(producer, kafka.topic_prefix, settings.max_records_per_message)
        app = create_collector(settings, publisher, CollectorRegistry(), ready=lambda: True)
        services.append(Served(app, port))
        return services[-1]
    return start


@dataclass
class Running:
    """An agent in this process: intake under uvicorn, forwarder thread."""

    agent: Agent
    served: Served

    @property
    def url(self) -> str:
        return self.served.url

    def stop(self) -> None:
        self.served.stop()
        self.agent.close()


@pytest.fixture
def start_agent(services, tmp_path: Path) -> Callable[..., Running]:
    """An agent with fast backoff on this test's spool dir."""
    def start(collector_url: str, **kw: Any) -> Running:
        settings = AgentSettings(**{"collector_url": collector_url, "port": free_port(),
                                    "spool_dir": tmp_path / "spool", "backoff_base_s": 0.05,
                                    "backoff_cap_s": 0.3, **kw})
        agent = Agent(settings, CollectorRegistry()).start()
        services.append(Running(agent, Served(agent.app, settings.port)))
        return services[-1]
    return start


@pytest.fixture
def stand_in(services) -> Callable[..., Upstream]:
    """A stand-in for the collector, answering with `answer`."""
    def start(answer: Answer, port: int = 0) -> Upstream:
        services.append(Upstream(answer, port))
        return services[-1]
    return start


def test_outage_everything_spooled_then_delivered_exactly(kafka, collector_on, start_agent,
                                                          topic_reader, wait):
    port = free_port()  # the collector will listen here, later
    url = start_agent(f"http://127.0.0.1:{port}").url
    sent = []
    for b in range(10):
        batch = records(f"outage-{b}", 50)
        sent += [r["id"] for r in batch]
        assert httpx.post(f"{url}/v1/inferences", json={"records": batch}).status_code == 200
    exports = [gauge_export(5, 0), gauge_export(5, 5), gauge_export(5, 10)]
    bodies = [(exports[0].SerializeToString(), {"Content-Type": PB}),
              (json.dumps(json_format.MessageToDict(exports[1])).encode(), {"Content-Type": JSON}),
              (gzip.compress(json.dumps(json_format.MessageToDict(exports[2])).encode()),
               {"Content-Type": JSON, "Content-Encoding": "gzip"})]
    for body, headers in bodies:
        assert httpx.post(f"{url}/v1/metrics", content=body, headers=headers).status_code == 200
    assert metric(url, "steward_agent_spool_records") == 515
    assert metric(url, "steward_agent_link_up") == 0

    collector_on(port)

    inference = T.INFERENCE.full(kafka.topic_prefix)
    got = wait(lambda: (ids := ids_on(topic_reader, inference)) and len(ids) >= 500 and ids,
               timeout_s=20, what="500 records on the inference topic")
    assert sorted(set(got)) == sorted(sent)
    assert len(got) - len(set(got)) == 0  # duplicates
    points = wait(lambda: len(ids_on(topic_reader, T.METRICS.full(kafka.topic_prefix))) >= 15,
                  timeout_s=10, what="15 metric points")
    assert points
    wait(lambda: metric(url, "steward_agent_spool_entries") == 0, 5, "an empty spool")
    assert metric(url, 'steward_agent_forwarded_records_total{signal="inferences"}') == 500
    assert metric(url, 'steward_agent_forwarded_records_total{signal="metrics"}') == 15
    assert metric(url, "steward_agent_link_up") == 1


def _agent_process(url: str, port: int, spool: Path, log: Path) -> subprocess.Popen:
    env = dict(os.environ, STEWARD_AGENT_MAX_BATCH_RECORDS="100",
               STEWARD_AGENT_BACKOFF_BASE_S="0.05", STEWARD_AGENT_BACKOFF_CAP_S="0.5")
    proc = subprocess.Popen([sys.executable, "-m", "steward.cli", "agent", "--collector-url",
                             url, "--port", str(port), "--spool-dir", str(spool)],
                            stdout=log.open("a"), stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    pytest.fail(f"agent did not start:\n{log.read_text()[-3000:]}")


def test_kill_9_while_forwarding_loses_nothing_and_duplicates_only_the_request_in_flight(
        kafka, start_collector, start_api, stand_in, topic_reader, wait, tmp_path: Path):
    collector = start_collector()
    api, store = start_api()
    hold, held_ids = threading.Event(), []
    hold.set()
    released = threading.Event()

    def slow_proxy(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        """Forward to the real collector; while `hold` is set, sit on its 200."""
        resp = httpx.post(collector.url + seen.path, content=seen.raw, headers={
            k: seen.headers[k] for k in ("content-type", "content-encoding")})
        if hold.is_set() and resp.status_code == 200:
            held_ids.extend(seen.ids())
            released.wait(20)
        return resp.status_code, {"Content-Type": resp.headers["content-type"]}, resp.content

    proxy = stand_in(slow_proxy)
    port, spool, log = free_port(), tmp_path / "spool", tmp_path / "agent.log"
    proc = _agent_process(proxy.url, port, spool, log)
    sent = []
    try:
        for b in range(6):
            batch = records(f"kill-{b}", 50)
            sent += [r["id"] for r in batch]
            resp = httpx.post(f"http://127.0.0.1:{port}/v1/inferences", json=batch)
            assert resp.status_code == 200
        wait(lambda: held_ids, 10, "a request acknowledged by Kafka, its answer held")
    finally:
        proc.kill()  # SIGKILL: between Kafka's ack and the spool's delete
        proc.wait(10)
    hold.clear()
    released.set()

    proc = _agent_process(proxy.url, port, spool, log)
    inference = T.INFERENCE.full(kafka.topic_prefix)
    try:
        got = wait(lambda: (ids := ids_on(topic_reader, inference)) and set(ids) >= set(sent)
                   and ids, timeout_s=20, what="every record after the restart")
        assert sorted(set(got)) == sorted(sent)
        duplicates = sorted(i for i in set(got) if got.count(i) > 1)
        assert duplicates == sorted(held_ids)  # exactly the request in flight, once more
        assert all(got.count(i) == 2 for i in duplicates)
        # ... and the store keeps each record once: delivered exactly once where it counts
        wait(lambda: store.count_inferences() == len(sent), 20, "every record stored")
        stored = httpx.get(f"{api.url}/inferences", params={"limit": 1000}).json()["records"]
        assert sorted(r["id"] for r in stored) == sorted(sent)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, log.read_text()[-3000:]
    assert sorted(p.name for p in spool.iterdir()) == ["agent.lock", "spool.sqlite3"]
    assert "agent stopped; 0 entries wait in the spool" in log.read_text()


def test_a_full_spool_drops_the_oldest_and_says_how_many(kafka, collector_on, start_agent,
                                                         topic_reader, wait):
    port = free_port()
    url = start_agent(f"http://127.0.0.1:{port}", max_spool_bytes=10_000).url
    batches = [records(f"full-{b:02d}", 3) for b in range(30)]
    for batch in batches:
        assert httpx.post(f"{url}/v1/inferences", json=batch).status_code == 200
    entries = metric(url, "steward_agent_spool_entries")
    size = metric(url, "steward_agent_spool_bytes") / entries  # every entry is this big
    kept = int(10_000 // size)
    assert entries == kept and 0 < kept < 30
    assert metric(url, 'steward_agent_dropped_entries_total{reason="spool-full",'
                       'signal="inferences"}') == 30 - kept
    assert metric(url, 'steward_agent_dropped_records_total{reason="spool-full",'
                       'signal="inferences"}') == 3 * (30 - kept)
    assert metric(url, 'steward_agent_spooled_records_total{signal="inferences"}') == 90

    collector_on(port)

    newest = sorted(r["id"] for batch in batches[30 - kept:] for r in batch)
    got = wait(lambda: (ids := ids_on(topic_reader, T.INFERENCE.full(kafka.topic_prefix)))
               and len(ids) >= len(newest) and ids, timeout_s=15, what="the kept records")
    assert sorted(got) == newest  # the oldest went, the newest arrived, once each


def test_retry_after_is_honoured(start_agent, stand_in, wait):
    def answer(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        if len(up.seen) == 1:
            return 503, {"Retry-After": "2", "Content-Type": JSON}, b'{"detail": "busy"}'
        return ok(seen)
    up = stand_in(answer)
    url = start_agent(up.url, backoff_base_s=0.01, backoff_cap_s=0.1).url
    assert httpx.post(f"{url}/v1/inferences", json=records("ra", 3)).status_code == 200
    wait(lambda: metric(url, "steward_agent_spool_entries") == 0, 10, "delivery")
    first, second = up.seen
    assert second.ids() == first.ids() == ["ra-0000", "ra-0001", "ra-0002"]
    assert 2.0 <= second.at - first.at < 3.0


def test_a_poisoned_entry_goes_to_the_dead_table_and_the_rest_is_delivered(
        start_agent, stand_in, wait):
    def answer(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        if any(i.startswith("poison") for i in seen.ids()):
            return 400, {"Content-Type": JSON}, b'{"detail": "schema v2 not understood"}'
        return ok(seen)
    port = free_port()
    running = start_agent(f"http://127.0.0.1:{port}")
    url = running.url
    batches = [records(f"good-{b}", 3) for b in range(4)]
    batches.insert(2, records("poison", 3))
    for batch in batches:
        assert httpx.post(f"{url}/v1/inferences", json=batch).status_code == 200

    up = stand_in(answer, port)

    wait(lambda: metric(url, "steward_agent_spool_entries") == 0, 10, "an empty spool")
    merged, *alone = up.seen
    assert len(merged.ids()) == 15  # all five entries in one request: 400
    assert [len(s.ids()) for s in alone] == [3] * 5  # then one by one
    delivered = [i for s in alone if s.ids()[0].startswith("good") for i in s.ids()]
    assert sorted(delivered) == sorted(r["id"] for b in batches for r in b
                                       if r["id"].startswith("good"))
    [dead] = running.agent.spool.dead_entries()
    assert dead.records == 3 and dead.reason == "HTTP 400: schema v2 not understood"
    assert metric(url, 'steward_agent_dead_records_total{signal="inferences"}') == 3
    assert metric(url, "steward_agent_dead_entries") == 1


def test_the_collectors_token_check(kafka, start_collector, start_agent, topic_reader, wait):
    """401: nothing leaves and nothing is lost; 403 for another site's records: those
    wait, the site's own records go on."""
    token, spec = new_token("edge-store-042", ["ingest"], "store-042")
    collector = start_collector(tokens=[spec])
    wrong = start_agent(collector.url, token=SecretStr("stw_not-issued"))
    own = records("own", 20)
    assert httpx.post(f"{wrong.url}/v1/inferences", json=own).status_code == 200
    wait(lambda: metric(wrong.url, 'steward_agent_forward_attempts_total{code="401",'
                                   'outcome="refused"}') >= 2, 5, "two refused attempts")
    assert metric(wrong.url, "steward_agent_spool_records") == 20
    wrong.stop()

    right = start_agent(collector.url, token=SecretStr(token))  # same spool dir
    other = [{**r, "site": "store-999"} for r in records("other", 5)]
    assert httpx.post(f"{right.url}/v1/inferences", json=other).status_code == 200
    got = wait(lambda: ids_on(topic_reader, T.INFERENCE.full(kafka.topic_prefix)), 10,
               "the site's own records")
    assert sorted(got) == sorted(r["id"] for r in own)
    wait(lambda: metric(right.url, "steward_agent_spool_records") == 5, 5, "the other site's")
    assert metric(right.url, 'steward_agent_forward_attempts_total{code="403",'
                             'outcome="refused"}') >= 1
