"""Reading the collector's answers: the rules the forwarder follows, one status at a time."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from collector.agent.signals import SIGNALS
from collector.agent.upstream import classify, error_reason, retry_after
from collector.otlp import metrics_response, status_body

PB = {"content-type": "application/x-protobuf"}
JS = {"content-type": "application/json"}
INF, MET = SIGNALS["inferences"], SIGNALS["metrics"]


def test_a_200_is_delivered_even_with_a_partial_success():
    body = metrics_response(2, "metric 'x': no model", "application/x-protobuf")
    out = classify(MET, 200, PB, body)
    assert (out.kind, out.rejected, out.reason) == ("delivered", 2, "metric 'x': no model")
    resp = ExportTraceServiceResponse()
    resp.partial_success.rejected_spans = 3
    assert classify(SIGNALS["traces"], 200, PB, resp.SerializeToString()).rejected == 3
    assert classify(MET, 200, JS, b'{"partialSuccess": {"rejectedDataPoints": "4"}}').rejected == 4
    assert classify(MET, 200, PB, ExportMetricsServiceResponse().SerializeToString()).rejected == 0


def test_a_200_with_rejected_inference_records_is_delivered_and_counted():
    body = json.dumps({"accepted": 1, "rejected": 1,
                       "errors": [{"index": 1, "reason": "tier: bad"}]}).encode()
    out = classify(INF, 200, JS, body)
    assert (out.kind, out.rejected, out.reason) == ("delivered", 1, "record 1: tier: bad")
    assert classify(INF, 200, JS, b"not json").kind == "delivered"


@pytest.mark.parametrize(("status", "kind"), [
    (400, "bad"), (413, "too_large"), (401, "refused"), (403, "refused"),
    (429, "retry"), (502, "retry"), (503, "retry"), (504, "retry"), (500, "retry"),
    (404, "unexpected"), (415, "unexpected"), (201, "unexpected"),
])
def test_status_to_outcome(status: int, kind: str):
    out = classify(INF, status, JS, b'{"detail": "why"}')
    assert (out.kind, out.code) == (kind, str(status))
    if status != 201:
        assert out.reason == "why"


def test_retry_after_is_read_on_retryable_answers_only():
    assert classify(INF, 503, {"retry-after": "2"}, b"").retry_after == 2.0
    assert classify(INF, 429, {"retry-after": "0.5"}, b"").retry_after == 0.5
    assert classify(INF, 500, {"retry-after": "9"}, b"").retry_after is None
    assert classify(INF, 503, {}, b"").retry_after is None


def test_retry_after_as_seconds_or_http_date():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after("120", now) == 120.0
    assert retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now) == 30.0
    assert retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0.0  # in the past: now
    assert retry_after("-5", now) == 0.0
    assert retry_after("soon", now) is None
    assert retry_after("", now) is None


def test_error_reasons_from_json_status_and_text():
    body, _ = status_body(400, "request body is not valid JSON", "application/x-protobuf")
    assert error_reason("application/x-protobuf", body) == "request body is not valid JSON"
    assert error_reason("application/json", b'{"code":3,"message":"bad otlp"}') == "bad otlp"
    collector_400 = {"accepted": 0, "rejected": 1, "detail": "no record in the batch is valid",
                     "errors": [{"index": 0, "reason": "latency_ms: too big"}]}
    assert error_reason("application/json", json.dumps(collector_400).encode()) == \
        "no record in the batch is valid; record 0: latency_ms: too big"
    assert error_reason("text/html", b"<h1>Bad Gateway</h1>") == "<h1>Bad Gateway</h1>"
    assert status_pb2.Status.FromString(body).code == 3
