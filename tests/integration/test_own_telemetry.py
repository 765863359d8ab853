"""Steward's own telemetry on real parts: a client's request with a known `traceparent` ->
collector -> Kafka -> canary-latency processor -> proposal -> governance gate -> rollback on
the actions topic, each part exporting by OTLP/HTTP (configured only through OTEL_*
variables) to a plain HTTP server that decodes what arrives with opentelemetry-proto."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import httpx
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from processors.canary_latency import CanaryLatency, CanarySpec
from processors.governance_gate import GovernanceGate
from steward import topics as T
from steward.governance.embedded import EmbeddedEngine
from steward.governance.gate import Gate
from steward.governance.masking import mask
from steward.telemetry import from_env
from tests.support import Upstream

REPO = Path(__file__).resolve().parents[2]
SPEC = CanarySpec(model="fraud-detector", baseline_version="1.4.0", canary_version="1.5.0",
                  factor=1.5, window_s=2, grace_s=0.5, min_samples=20)
TRACE = "5b8efff798038103d269b633813fc60c"
CLIENT_SPAN = "eee19b7ec3c1b174"
SERVICES = ("steward-collector", "steward-processor-canary-latency",
            "steward-processor-governance-gate")


def inference(i: int, version: str, latency_ms: float, ts: datetime) -> dict:
    return {"id": f"{version}-{i}", "model": "fraud-detector", "version": version,
            "site": "shop-lyon", "tier": "edge", "ts": ts.isoformat(), "latency_ms": latency_ms}


def exported_spans(receiver: Upstream) -> dict[str, list[Span]]:
    """Every span the receiver got, by the `service.name` of its resource."""
    out: dict[str, list[Span]] = {}
    for seen in [s for s in receiver.seen if s.path == "/v1/traces"]:
        req = ExportTraceServiceRequest.FromString(seen.body)
        for rs in req.resource_spans:
            attrs = {a.key: a.value.string_value for a in rs.resource.attributes}
            for ss in rs.scope_spans:
                out.setdefault(attrs["service.name"], []).extend(ss.spans)
    return out


def exported_metrics(receiver: Upstream) -> set[tuple[str, str]]:
    """(service.name, metric name) of every metric the receiver got."""
    out = set()
    for seen in [s for s in receiver.seen if s.path == "/v1/metrics"]:
        for rm in ExportMetricsServiceRequest.FromString(seen.body).resource_metrics:
            service = next(a.value.string_value for a in rm.resource.attributes
                           if a.key == "service.name")
            out |= {(service, m.name) for sm in rm.scope_metrics for m in sm.metrics}
    return out


def attrs_of(span: Span) -> dict:
    return {a.key: a.value.string_value or a.value.int_value for a in span.attributes}


def test_one_trace_from_the_request_to_the_rollback(kafka, start_collector, start_runner,
                                                    topic_reader, wait, monkeypatch, services,
                                                    tmp_path):
    receiver = Upstream()
    services.append(receiver)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    tel = {name: from_env(name) for name in SERVICES}
    try:
        collector = start_collector(telemetry=tel["steward-collector"])
        start_runner(CanaryLatency([SPEC]), telemetry=tel["steward-processor-canary-latency"])
        rules = shutil.copytree(REPO / "rules", tmp_path / "rules")
        start_runner(GovernanceGate(Gate(EmbeddedEngine(rules), mask)),
                     telemetry=tel["steward-processor-governance-gate"])
        now = datetime.now(UTC)
        records = [inference(i, "1.4.0", 20.0 + i % 5, now) for i in range(30)] + \
            [inference(i, "1.5.0", 60.0 + i % 5, now) for i in range(30)]
        resp = httpx.post(f"{collector.url}/v1/inferences", json={"records": records},
                          headers={"traceparent": f"00-{TRACE}-{CLIENT_SPAN}-01"})
        assert resp.status_code == 200, resp.text

        actions = wait(lambda: topic_reader(T.ACTIONS.full(kafka.topic_prefix)), timeout_s=30,
                       what="the rollback on the actions topic")
        headers = actions[0]["headers"]
        assert headers["ce_type"] == "steward.model.rolled_back"
        assert headers["traceparent"].split("-")[1] == TRACE  # Kafka hop: the gate's span
        assert headers["ce_traceparent"].split("-")[1] == TRACE  # CloudEvents extension
        (decision,) = [r for m in topic_reader(T.DECISIONS.full(kafka.topic_prefix))
                       for r in json.loads(m["value"])["records"]]
        assert decision["trace_id"] == TRACE  # the decision log names the trace

        for t in tel.values():
            assert t.tracer_provider.force_flush(10_000)
            t.meter_provider.force_flush(10_000)
        spans = exported_spans(receiver)
    finally:
        for t in tel.values():
            t.shutdown()

    in_trace = {svc: [s for s in spans.get(svc, []) if s.trace_id.hex() == TRACE]
                for svc in SERVICES}
    (server,) = [s for s in in_trace["steward-collector"] if s.kind == Span.SPAN_KIND_SERVER]
    assert server.parent_span_id.hex() == CLIENT_SPAN and server.name == "POST /v1/inferences"
    (send,) = [s for s in in_trace["steward-collector"] if s.kind == Span.SPAN_KIND_PRODUCER]
    assert send.parent_span_id == server.span_id

    canary = in_trace["steward-processor-canary-latency"]
    (consumed,) = [s for s in canary if s.kind == Span.SPAN_KIND_CONSUMER]
    assert consumed.parent_span_id == send.span_id
    got = attrs_of(consumed)
    assert (got["messaging.system"], got["messaging.destination.name"],
            got["messaging.kafka.message.key"]) == \
        ("kafka", T.INFERENCE.full(kafka.topic_prefix), "fraud-detector/shop-lyon")
    assert {"messaging.destination.partition.id", "messaging.kafka.offset"} <= got.keys()
    # the window closed on the clock: the tick's span continues the record's trace
    (tick,) = [s for s in canary if s.name == "canary-latency tick"]
    assert tick.parent_span_id == consumed.span_id

    (gated,) = [s for s in in_trace["steward-processor-governance-gate"]
                if s.kind == Span.SPAN_KIND_CONSUMER]
    assert gated.parent_span_id == tick.span_id
    assert attrs_of(gated)["messaging.destination.name"] == \
        T.PROPOSALS.full(kafka.topic_prefix)
    assert headers["traceparent"].split("-")[2] == gated.span_id.hex()

    metrics = exported_metrics(receiver)
    assert {("steward-collector", "steward.ingest.records"),
            ("steward-processor-canary-latency", "steward.processing.duration"),
            ("steward-processor-governance-gate", "steward.processing.emitted")} <= metrics
