"""The local intake over real HTTP on loopback: validate, then answer once spooled."""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from prometheus_client import CollectorRegistry

from collector.agent.main import Agent
from collector.agent.settings import load
from collector.otlp import JSON, PROTOBUF, parse_otlp
from steward.errors import ConfigError
from tests.support import Served

from .conftest import record, settings


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., tuple[Agent, str]]]:
    running: list[tuple[Agent, Served]] = []

    def start(**kw: Any) -> tuple[Agent, str]:
        s = settings(tmp_path, **kw)
        agent = Agent(s, CollectorRegistry()).start()
        running.append((agent, Served(agent.app, s.port)))
        return agent, running[-1][1].url
    yield start
    for agent, served in running:
        served.stop()
        agent.close()


def entries(agent: Agent, signal: str) -> list:
    return agent.spool.read(signal, 0, 1000, 10 ** 9, 10 ** 9)


def test_an_inference_batch_with_one_invalid_record_is_refused_whole(start):
    agent, url = start()
    batch = [record("a", 0), record("b", 1, tier="orbit"), record("c", 2, latency_ms=-1)]
    resp = httpx.post(f"{url}/v1/inferences", json={"records": batch})
    assert resp.status_code == 400
    body = resp.json()
    assert (body["accepted"], body["rejected"]) == (0, 2)
    assert [e["index"] for e in body["errors"]] == [1, 2]
    assert "tier" in body["errors"][0]["reason"] and "nothing was spooled" in body["detail"]
    assert agent.spool.totals().entries == 0


def test_valid_records_are_spooled_validated_with_stable_ids(start):
    agent, url = start()
    no_id = record(None, 5)
    for _ in range(2):  # a bare list is accepted too
        resp = httpx.post(f"{url}/v1/inferences", json=[record("given-1", 0), no_id])
        assert resp.status_code == 200 and resp.json() == {"accepted": 2, "rejected": 0,
                                                           "errors": []}
    first, second = entries(agent, "inferences")
    assert first.records == 2 and first.content_type == JSON
    stored, again = json.loads(first.body)["records"], json.loads(second.body)["records"]
    # the same records, ids included, each stamped with the spool backlog it met
    assert [r.pop("agent_backlog") for r in stored] == [0, 0]
    assert [r.pop("agent_backlog") for r in again] == [2, 2]
    assert stored == again
    assert stored[0]["id"] == "given-1" and stored[1]["id"].startswith("inf-")
    assert stored[1]["schema"] == "steward.inference.v1"
    assert stored[1]["ts"] == "2026-01-01T00:00:00.005000Z"


def test_otlp_json_and_gzip_are_spooled_as_protobuf(start, shared_data: Path):
    agent, url = start()
    raw = (shared_data / "otlp-examples" / "metrics.json").read_bytes()
    resp = httpx.post(f"{url}/v1/metrics", content=gzip.compress(raw),
                      headers={"Content-Type": JSON, "Content-Encoding": "gzip"})
    assert resp.status_code == 200 and resp.content == b"{}"
    [entry] = entries(agent, "metrics")
    assert entry.content_type == PROTOBUF and entry.records == 4  # four data points
    assert ExportMetricsServiceRequest.FromString(entry.body) == \
        parse_otlp(raw, JSON, ExportMetricsServiceRequest)

    pb = ExportMetricsServiceRequest.FromString(entry.body).SerializeToString()
    resp = httpx.post(f"{url}/v1/metrics", content=pb, headers={"Content-Type": PROTOBUF})
    assert resp.status_code == 200 and resp.content == b""
    assert resp.headers["content-type"] == PROTOBUF
    for signal, name in (("traces", "trace.json"), ("logs", "logs.json")):
        raw = (shared_data / "otlp-examples" / name).read_bytes()
        resp = httpx.post(f"{url}/v1/{signal}", content=raw, headers={"Content-Type": JSON})
        assert resp.status_code == 200, resp.text
        assert entries(agent, signal)[0].records >= 1


def test_bad_otlp_is_a_400_status_and_a_bad_media_type_415(start):
    agent, url = start()
    resp = httpx.post(f"{url}/v1/traces", content=b"{not json", headers={"Content-Type": JSON})
    assert resp.status_code == 400 and resp.json()["code"] == 3
    resp = httpx.post(f"{url}/v1/logs", content=b"\xff\xff\xff",
                      headers={"Content-Type": PROTOBUF})
    assert resp.status_code == 400
    assert "ExportLogsServiceRequest" in status_pb2.Status.FromString(resp.content).message
    resp = httpx.post(f"{url}/v1/metrics", content=b"x", headers={"Content-Type": "text/plain"})
    assert resp.status_code == 415
    resp = httpx.post(f"{url}/v1/inferences", content=b"[]")
    assert resp.status_code == 400 and "no records" in resp.json()["detail"]
    assert agent.spool.totals().entries == 0


def test_bodies_over_the_limit_are_413(start):
    agent, url = start(max_body_bytes=2048)
    big = gzip.compress(json.dumps([record(f"r{i}", i) for i in range(100)]).encode())
    resp = httpx.post(f"{url}/v1/inferences", content=big, headers={"Content-Encoding": "gzip"})
    assert resp.status_code == 413 and agent.spool.totals().entries == 0


def test_refuse_newest_answers_503_with_retry_after_and_counts(start):
    agent, url = start(max_spool_bytes=1024, full_policy="refuse-newest", retry_after_s=3)
    batch = {"records": [record("r1", 1), record("r2", 2)]}
    codes = [httpx.post(f"{url}/v1/inferences", json=batch).status_code for _ in range(5)]
    assert codes[0] == 200 and codes[-1] == 503
    held = codes.count(200)
    resp = httpx.post(f"{url}/v1/inferences", json=batch)
    assert resp.status_code == 503 and resp.headers["retry-after"] == "3"
    assert "spool is full" in resp.json()["detail"]
    metrics = httpx.get(f"{url}/metrics").text
    assert f'steward_agent_refused_records_total{{signal="inferences"}} {2 * (6 - held)}.0' \
        in metrics
    assert agent.spool.totals().entries == held


def test_health_readiness_and_metrics(start):
    _, url = start()
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{url}/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"spool": True, "forwarder": True}
    httpx.post(f"{url}/v1/inferences", json=[record("a")])
    metrics = httpx.get(f"{url}/metrics").text
    assert 'steward_agent_spooled_records_total{signal="inferences"} 1.0' in metrics
    assert "steward_agent_spool_entries 1.0" in metrics
    assert 'steward_agent_requests_total{code="200",route="/v1/inferences"} 1.0' in metrics


def test_settings_refuse_a_collector_url_that_is_the_agent_itself(tmp_path: Path):
    with pytest.raises(ConfigError, match="the agent's own address"):
        load(collector_url="http://localhost:4318", spool_dir=tmp_path)
    with pytest.raises(ConfigError, match="without a path"):
        load(collector_url="http://collector:4318/v1/inferences", spool_dir=tmp_path)
    with pytest.raises(ConfigError, match="collector_url"):
        load(spool_dir=tmp_path)
    token = tmp_path / "token"
    token.write_text("abc\n")
    s = load(token, collector_url="https://c.example/", spool_dir=tmp_path)
    assert s.collector_url == "https://c.example" and s.token.get_secret_value() == "abc"
    assert "abc" not in repr(s)


def test_the_agent_never_imports_kafka():
    code = ("import sys, steward.cli, collector.agent.main; "
            "sys.exit(1 if any(m.split('.')[0] == 'kafka' for m in sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_sampling_keeps_records_by_id_and_scales_their_sample_rate(start):
    agent, url = start(sample_rate=0.25)
    batch = [record(f"r{i}", i) for i in range(400)]
    batch[0]["sample_rate"] = 0.5                       # already sampled once upstream of us
    assert httpx.post(f"{url}/v1/inferences", json=batch).status_code == 200
    # independently: keep iff the first 8 bytes of sha256(id), as a fraction of 2**64, < rate
    expected = [r["id"] for r in batch
                if int.from_bytes(hashlib.sha256(r["id"].encode()).digest()[:8], "big")
                / 2**64 < 0.25]
    stored = [r for e in entries(agent, "inferences") for r in json.loads(e.body)["records"]]
    assert [r["id"] for r in stored] == expected and 70 < len(expected) < 130
    rates = {r["id"]: r["sample_rate"] for r in stored}
    assert all(rate == 0.25 for rid, rate in rates.items() if rid != "r0")
    if "r0" in rates:
        assert rates["r0"] == 0.125
    metrics = httpx.get(f"{url}/metrics").text
    assert f'steward_agent_sampled_out_records_total{{signal="inferences"}} ' \
        f'{float(400 - len(expected))}' in metrics
