"""OTLP traces and logs on a real collector and broker: the OpenTelemetry SDK's own
exporters send inference spans and log records, and exactly the inference records they
describe arrive on Kafka, read back with a bare kafka-python consumer."""

from __future__ import annotations

import base64
import gzip
import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from steward import topics as T
from steward.auth import new_token

pytestmark = pytest.mark.integration

T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z in ns
EDGE = {"service.name": "fraud-detector", "service.version": "1.5.0",
        "steward.site": "store-042", "steward.tier": "edge", "host.name": "edge-box-7"}
BERLIN_TOKEN, BERLIN = new_token("berlin-n1", ["ingest"], "factory-berlin")


@pytest.fixture(autouse=True)
def _plain_exporter_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK exporters read OTEL_* and proxy variables: none of the host's may apply."""
    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def arrived(kafka: Any, topic_reader: Callable, wait: Callable, topic: T.Topic,
            expected: int) -> list[tuple[str, dict[str, Any]]]:
    """(key, record) of every record on `topic` once `expected` are there; then no more."""
    def read() -> list[tuple[str, dict[str, Any]]]:
        return [(m["key"], rec) for m in topic_reader(topic.full(kafka.topic_prefix))
                for rec in json.loads(m["value"])["records"]]
    got = wait(lambda: (out := read()) and len(out) >= expected and out, timeout_s=20,
               what=f"{expected} records on {topic.name}")
    assert len(got) == expected, got
    return got


def counted(url: str, signal: str) -> dict[str, float]:
    """The collector's steward_collector_records_total by outcome for one signal."""
    out = {}
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith("steward_collector_records_total{") and f'signal="{signal}"' in line:
            outcome = line.split('outcome="', 1)[1].split('"', 1)[0]
            out[outcome] = float(line.rsplit(" ", 1)[1])
    return out


def test_sdk_span_exporter_delivers_inference_spans(kafka, start_collector, topic_reader, wait):
    url = start_collector().url
    provider = TracerProvider(resource=Resource.create(EDGE))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{url}/v1/traces")))
    tracer = provider.get_tracer("fraud-detector.server")

    # exact times: 38.2 ms from start to end
    exact = tracer.start_span("predict", start_time=T0, attributes={
        "steward.inference.id": "fd-edge-box-7-000001", "steward.feature.amount": 129.9,
        "steward.feature.country": "DE", "steward.feature.card_present": True,
        "steward.prediction": 0.07})
    exact.end(end_time=T0 + 38_200_000)
    # real times, a failed inference, with an ordinary child span and no inference id
    began = time.perf_counter()
    with tracer.start_as_current_span("predict", attributes={
            "steward.feature.amount": 15.0, "steward.prediction": 0.91, "steward.label": 1,
            "steward.model.version": "1.6.0-rc1", "steward.sample_rate": 0.1}) as timed:
        with tracer.start_as_current_span("load-features", attributes={"db": "redis"}):
            time.sleep(0.05)
        timed.set_status(Status(StatusCode.ERROR, "model timeout"))
    took_ms = (time.perf_counter() - began) * 1000
    ctx = timed.get_span_context()
    with tracer.start_as_current_span("GET /healthz"):
        pass
    provider.shutdown()

    got = dict((r["id"], (key, r)) for key, r in arrived(kafka, topic_reader, wait,
                                                          T.INFERENCE, 2))
    timed_id = f"span-{ctx.trace_id:032x}{ctx.span_id:016x}"
    assert set(got) == {"fd-edge-box-7-000001", timed_id}
    key, first = got["fd-edge-box-7-000001"]
    assert key == "fraud-detector/store-042"
    assert first == {
        "schema": "steward.inference.v1", "id": "fd-edge-box-7-000001",
        "model": "fraud-detector", "version": "1.5.0", "site": "store-042", "tier": "edge",
        "node": "edge-box-7", "ts": "2026-01-01T00:00:00.038200Z", "latency_ms": 38.2,
        "features": {"amount": 129.9, "country": "DE", "card_present": True},
        "prediction": 0.07, "label": None, "error": False, "sample_rate": 1.0, "profiled": False,
        "hardware": None, "spillover_from": None, "agent_backlog": None}
    key, second = got[timed_id]
    assert key == "fraud-detector/store-042"
    assert (second["version"], second["features"], second["prediction"], second["label"]) == (
        "1.6.0-rc1", {"amount": 15.0}, 0.91, 1)
    assert (second["error"], second["sample_rate"]) == (True, 0.1)
    assert 50.0 <= second["latency_ms"] <= took_ms + 1.0
    assert counted(url, "traces") == {"accepted": 2.0, "rejected": 0.0, "ignored": 2.0}
    assert topic_reader(T.DEADLETTER.full(kafka.topic_prefix)) == []


def test_sdk_log_exporter_delivers_inference_log_records(kafka, start_collector, topic_reader,
                                                         wait):
    url = start_collector().url
    provider = LoggerProvider(resource=Resource.create({**EDGE, "service.name": "churn-model",
                                                        "steward.tier": "cloud"}))
    provider.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{url}/v1/logs")))
    logger = provider.get_logger("churn-model.server")
    logger.emit(timestamp=T0 + 125_000_000, body="scored", attributes={
        "steward.inference.id": "churn-1", "steward.latency_ms": 12.5,
        "steward.feature.tenure_months": 14, "steward.feature.plan": "pro",
        "steward.prediction": "stay"})
    logger.emit(timestamp=T0, body="cache warmed", attributes={"entries": 100})
    # no timestamp: the SDK still sets the observed time, which the collector falls back to
    before = datetime.now(UTC)
    logger.emit(body="scored", attributes={
        "steward.inference.id": "churn-2", "steward.latency_ms": 40,
        "steward.prediction": "leave", "steward.error": True})
    after = datetime.now(UTC)
    provider.shutdown()

    got = {r["id"]: (key, r) for key, r in arrived(kafka, topic_reader, wait, T.INFERENCE, 2)}
    assert set(got) == {"churn-1", "churn-2"}
    key, first = got["churn-1"]
    assert key == "churn-model/store-042"
    assert first == {
        "schema": "steward.inference.v1", "id": "churn-1", "model": "churn-model",
        "version": "1.5.0", "site": "store-042", "tier": "cloud", "node": "edge-box-7",
        "ts": "2026-01-01T00:00:00.125000Z", "latency_ms": 12.5,
        "features": {"tenure_months": 14, "plan": "pro"}, "prediction": "stay",
        "label": None, "error": False, "sample_rate": 1.0, "profiled": False,
        "hardware": None, "spillover_from": None, "agent_backlog": None}
    _, second = got["churn-2"]
    assert (second["latency_ms"], second["prediction"], second["error"]) == (40.0, "leave", True)
    assert second["features"] == {}
    assert before <= datetime.fromisoformat(second["ts"]) <= after
    assert counted(url, "logs") == {"accepted": 2.0, "rejected": 0.0, "ignored": 1.0}


def test_otlp_json_traces_with_hex_ids_gzip_and_a_rejected_span(kafka, start_collector,
                                                                 topic_reader, wait):
    url = start_collector().url
    trace_id, span_id = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"

    def span(span_id: str, start: int, end: int, **attrs: float) -> dict[str, Any]:
        return {"traceId": trace_id, "spanId": span_id, "name": "predict", "kind": 2,
                "startTimeUnixNano": str(start), "endTimeUnixNano": str(end),
                "attributes": [{"key": f"steward.feature.{k}", "value": {"doubleValue": v}}
                               for k, v in attrs.items()]}
    doc = {"resourceSpans": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "fraud-detector"}},
            {"key": "cloud.region", "value": {"stringValue": "eu-west-1"}}]},
        "scopeSpans": [{"scope": {"name": "srv"}, "spans": [
            span(span_id, T0, T0 + 7_000_000, amount=3.5),
            span("EEE19B7EC3C1B175", T0, T0 + 2_000_000, amount=4.0),  # upper case hex
            span("00000000000000ff", T0 + 1, T0, amount=1.0),  # ends before it starts
        ]}]}]}
    resp = httpx.post(f"{url}/v1/traces", content=gzip.compress(json.dumps(doc).encode()),
                      headers={"content-type": "application/json", "content-encoding": "gzip"})
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/json"
    assert resp.json() == {"partialSuccess": {
        "rejectedSpans": "1",
        "errorMessage": f"span 'predict' 00000000000000ff: endTimeUnixNano {T0} is before "
                        f"startTimeUnixNano {T0 + 1}"}}

    got = {r["id"]: r for _, r in arrived(kafka, topic_reader, wait, T.INFERENCE, 2)}
    assert set(got) == {f"span-{trace_id}{span_id}", f"span-{trace_id}eee19b7ec3c1b175"}
    first = got[f"span-{trace_id}{span_id}"]
    assert (first["model"], first["version"], first["site"], first["tier"]) == (
        "fraud-detector", "unknown", "eu-west-1", "cloud")
    assert (first["latency_ms"], first["features"]) == (7.0, {"amount": 3.5})
    assert first["ts"] == "2026-01-01T00:00:00.007000Z"

    (dead,) = [json.loads(m["value"])
               for m in topic_reader(T.DEADLETTER.full(kafka.topic_prefix))]
    assert dead["stage"] == "collector.otlp.traces"
    assert dead["reason"].startswith("span 'predict' 00000000000000ff: endTimeUnixNano")
    payload = json.loads(base64.b64decode(dead["payload_b64"]))
    assert (payload["span"]["traceId"], payload["span"]["spanId"]) == (
        trace_id, "00000000000000ff")
    assert counted(url, "traces") == {"accepted": 2.0, "rejected": 1.0, "ignored": 0.0}


def test_site_bound_token_on_traces_and_logs(kafka, start_collector, topic_reader, wait):
    url = start_collector(tokens=[BERLIN]).url
    token = {"authorization": f"Bearer {BERLIN_TOKEN}"}

    def traces(site: str) -> bytes:
        return json.dumps({"resourceSpans": [{
            "resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": "vision"}},
                {"key": "steward.site", "value": {"stringValue": site}}]},
            "scopeSpans": [{"spans": [{
                "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
                "startTimeUnixNano": str(T0), "endTimeUnixNano": str(T0 + 1_000_000),
                "attributes": [{"key": "steward.prediction",
                                "value": {"stringValue": "ok"}}]}]}]}]}).encode()
    logs = json.dumps({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "v"}},
                                    {"key": "steward.site", "value": {"stringValue": "lyon"}}]},
        "scopeLogs": [{"logRecords": [{"timeUnixNano": str(T0), "attributes": [
            {"key": "steward.prediction", "value": {"stringValue": "ok"}},
            {"key": "steward.latency_ms", "value": {"intValue": "3"}}]}]}]}]}).encode()
    as_json = {"content-type": "application/json"}

    other = httpx.post(f"{url}/v1/traces", content=traces("shop-lyon"),
                       headers={**as_json, **token})
    assert other.status_code == 403
    assert other.headers["content-type"] == "application/json"
    status = other.json()
    assert status["code"] == 7 and "shop-lyon" in status["message"]
    log_denied = httpx.post(f"{url}/v1/logs", content=logs, headers={**as_json, **token})
    assert log_denied.status_code == 403 and "lyon" in log_denied.json()["message"]
    anon = httpx.post(f"{url}/v1/traces", content=traces("factory-berlin"),
                      headers={"content-type": "application/x-protobuf"})
    assert anon.status_code == 401
    assert status_pb2.Status.FromString(anon.content).code == 16  # protobuf request: protobuf

    # the SDK exporter with the token, for its own site: accepted
    provider = TracerProvider(resource=Resource.create({"service.name": "vision",
                                                        "steward.site": "factory-berlin"}))
    processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{url}/v1/traces", headers=token))
    provider.add_span_processor(processor)
    with provider.get_tracer("t").start_as_current_span(
            "predict", attributes={"steward.prediction": "ok",
                                   "steward.inference.id": "berlin-1"}):
        pass
    assert provider.force_flush()
    provider.shutdown()
    ((key, rec),) = arrived(kafka, topic_reader, wait, T.INFERENCE, 1)
    assert (key, rec["id"], rec["site"]) == ("vision/factory-berlin", "berlin-1",
                                             "factory-berlin")
