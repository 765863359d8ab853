"""OTLP traces and logs -> inference records: the official examples, and spans and log
records built by hand with every field worked out by hand."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from collector.otlp import LOGS, TRACES
from collector.otlp_inference import logs_to_records, spans_to_records
from steward.schema import InferenceRecord

JSON_CT = "application/json"
PB_CT = "application/x-protobuf"
TRACE_HEX = "5b8efff798038103d269b633813fc60c"
SPAN_HEX = "eee19b7ec3c1b174"
START_NS = 1544712660000000000  # 2018-12-13T14:51:00Z
T_NS = "1544712660300000000"    # 2018-12-13T14:51:00.3Z
T = datetime(2018, 12, 13, 14, 51, 0, 300000, tzinfo=UTC)


def kv(key: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"key": key, "value": value}


def s(key: str, text: str) -> dict[str, Any]:
    return kv(key, {"stringValue": text})


def d(key: str, x: float | str) -> dict[str, Any]:
    return kv(key, {"doubleValue": x})


RESOURCE = [s("service.name", "fraud-svc"), s("service.version", "3.1"),
            s("steward.site", "paris-edge"), s("steward.tier", "edge"), s("host.name", "node-7")]


def traces(*spans: dict[str, Any], resource: list | None = None) -> bytes:
    doc = {"resourceSpans": [{"resource": {"attributes": RESOURCE if resource is None
                                           else resource},
                              "scopeSpans": [{"scope": {"name": "srv"}, "spans": list(spans)}]}]}
    return json.dumps(doc).encode()


def logs(*records: dict[str, Any], resource: list | None = None) -> bytes:
    doc = {"resourceLogs": [{"resource": {"attributes": RESOURCE if resource is None
                                          else resource},
                             "scopeLogs": [{"logRecords": list(records)}]}]}
    return json.dumps(doc).encode()


def span(name: str, attrs: list[dict], start: int = START_NS, end: int = START_NS + 42_500_000,
         span_id: str = SPAN_HEX, **extra: Any) -> dict[str, Any]:
    return {"traceId": TRACE_HEX, "spanId": span_id, "name": name, "kind": 2,
            "startTimeUnixNano": str(start), "endTimeUnixNano": str(end),
            "attributes": attrs, **extra}


def map_spans(raw: bytes, content_type: str = JSON_CT):
    return spans_to_records(TRACES.parse(raw, content_type))


def map_logs(raw: bytes, content_type: str = JSON_CT):
    return logs_to_records(LOGS.parse(raw, content_type))


# --- the official examples: no steward attributes, so nothing for Steward ----------------


def test_official_trace_example_is_one_ignored_span(shared_data):
    result = map_spans((shared_data / "otlp-examples" / "trace.json").read_bytes())
    assert (result.records, result.rejected, result.ignored, result.errors) == ([], 0, 1, [])


@pytest.mark.parametrize("name", ["logs.json", "events.json"])
def test_official_log_examples_are_one_ignored_record_each(shared_data, name):
    raw = (shared_data / "otlp-examples" / name).read_bytes()
    req = LOGS.parse(raw, JSON_CT)
    assert len(req.resource_logs[0].scope_logs[0].log_records) == 1
    result = logs_to_records(req)
    assert (result.records, result.rejected, result.ignored, result.errors) == ([], 0, 1, [])


def test_official_example_ids_are_read_as_hex(shared_data):
    """The example writes its ids in upper case hex: 16 and 8 bytes, not base64 garbage."""
    req = TRACES.parse((shared_data / "otlp-examples" / "trace.json").read_bytes(), JSON_CT)
    sp = req.resource_spans[0].scope_spans[0].spans[0]
    assert (sp.trace_id.hex(), sp.span_id.hex()) == (TRACE_HEX, SPAN_HEX)
    assert sp.parent_span_id.hex() == "eee19b7ec3c1b173"


# --- spans ---------------------------------------------------------------------------------


INFERENCE_SPAN = span("predict", [
    s("steward.model", "fraud"),  # beats the resource's service.name
    d("steward.feature.amount", 129.9), s("steward.feature.country", "DE"),
    kv("steward.feature.card_present", {"boolValue": True}),
    kv("steward.feature.items", {"intValue": "3"}),
    d("steward.prediction", 0.07), kv("steward.label", {"intValue": "0"}),
    d("steward.sample_rate", 0.5), s("http.route", "/score"), s("steward.feature.", "x"),
], status={"code": 2, "message": "model timeout"})


def test_inference_span_maps_every_field():
    result = map_spans(traces(INFERENCE_SPAN))
    assert (result.rejected, result.ignored) == (0, 0)
    (rec,) = result.records
    assert rec == InferenceRecord(
        id=f"span-{TRACE_HEX}{SPAN_HEX}",  # no steward.inference.id: trace id + span id
        model="fraud", version="3.1", site="paris-edge", tier="edge", node="node-7",
        # end = start + 42_500_000 ns = 14:51:00.0425; latency 42_500_000 ns = 42.5 ms
        ts=datetime(2018, 12, 13, 14, 51, 0, 42500, tzinfo=UTC), latency_ms=42.5,
        features={"amount": 129.9, "country": "DE", "card_present": True, "items": 3},
        prediction=0.07, label=0, error=True, sample_rate=0.5)  # status code 2 = ERROR


def test_span_ids_defaults_and_ignored_neighbours():
    raw = traces(
        span("explicit-id", [s("steward.inference.id", "req-42"), s("steward.prediction", "cat"),
                             kv("steward.error", {"boolValue": True})],
             start=START_NS, end=START_NS + 1_000_000_000, span_id="00000000000000a1"),
        span("plain", [s("http.route", "/health")], span_id="00000000000000a2"),
        span("resource-only", [], span_id="00000000000000a3"),
        span("empty-feature-name", [s("steward.feature.", "x")], span_id="00000000000000a4"),
        span("one-feature", [kv("steward.feature.k", {"intValue": "7"})],
             start=START_NS, end=START_NS, span_id="00000000000000a5",
             status={"code": 1}),  # OK: not an error
        resource=[*RESOURCE, s("steward.prediction", "on the resource: not an inference")],
    )
    result = map_spans(raw)
    assert (result.rejected, result.ignored) == (0, 3)
    explicit, one = result.records
    assert (explicit.id, explicit.prediction, explicit.error) == ("req-42", "cat", True)
    assert (explicit.latency_ms, explicit.ts) == (1000.0, datetime(2018, 12, 13, 14, 51, 1,
                                                                   tzinfo=UTC))
    assert (explicit.model, explicit.version, explicit.features) == ("fraud-svc", "3.1", {})
    assert one.id == f"span-{TRACE_HEX}00000000000000a5"
    assert (one.features, one.prediction, one.label) == ({"k": 7}, None, None)
    assert (one.latency_ms, one.error, one.sample_rate) == (0.0, False, 1.0)


def test_span_records_are_the_same_from_protobuf_and_on_retry():
    raw = traces(INFERENCE_SPAN)
    from_json = map_spans(raw)
    as_pb = TRACES.parse(raw, JSON_CT).SerializeToString()
    assert map_spans(as_pb, PB_CT) == from_json == map_spans(raw)


def test_invalid_inference_spans_are_rejected_alone_with_reasons():
    feature = s("steward.feature.x", "1")
    raw = traces(
        span("backwards", [feature], start=START_NS + 5, end=START_NS, span_id="00000000000000b1"),
        span("nan", [d("steward.feature.x", "NaN")], span_id="00000000000000b2"),
        span("slash", [feature, s("steward.site", "paris/edge")], span_id="00000000000000b3"),
        span("unended", [feature], end=0, span_id="00000000000000b4"),
        span("long", [feature], end=START_NS + 3_600_000_000_001, span_id="00000000000000b5"),
        span("good", [feature], span_id="00000000000000b6"),
        span("rate", [feature, d("steward.sample_rate", 0)], span_id="00000000000000b7"),
        span("plain", [], span_id="00000000000000b8"),
    )
    result = map_spans(raw)
    assert [r.id for r in result.records] == [f"span-{TRACE_HEX}00000000000000b6"]
    assert (result.rejected, result.ignored) == (6, 1)
    assert result.errors == [
        f"span 'backwards' 00000000000000b1: endTimeUnixNano {START_NS} is before "
        f"startTimeUnixNano {START_NS + 5}",
        "span 'nan' 00000000000000b2: steward.feature.x is nan: only finite numbers are "
        "accepted",
        "span 'slash' 00000000000000b3: site: String should match pattern "
        "'^[A-Za-z0-9][A-Za-z0-9_.:@+-]{0,127}$'",
        "span 'unended' 00000000000000b4: missing endTimeUnixNano",
        "span 'long' 00000000000000b5: latency_ms: Input should be less than or equal to "
        "3600000",
    ]  # MAX_ERRORS = 5 reasons; the sixth is counted in the message
    assert result.message.endswith("; and 1 more")
    assert [why for why, _ in result.dead][5] == (
        "span 'rate' 00000000000000b7: sample_rate: Input should be greater than 0")

    _, raw_dead = result.dead[2]  # the dead letter: the span (hex ids) and its resource
    dead = json.loads(raw_dead)
    assert (dead["span"]["name"], dead["span"]["traceId"], dead["span"]["spanId"]) == (
        "slash", TRACE_HEX, "00000000000000b3")
    assert dead["resource"]["service.name"] == "fraud-svc"


def test_inference_span_without_a_model_is_rejected():
    result = map_spans(traces(span("anon", [d("steward.prediction", 1)]),
                              resource=[s("steward.site", "x")]))
    assert result.errors == [f"span 'anon' {SPAN_HEX}: no model: set steward.model or the "
                             "resource's service.name"]


# --- log records -------------------------------------------------------------------------


def test_inference_log_records_map_every_field():
    raw = logs(
        {"timeUnixNano": T_NS, "observedTimeUnixNano": "1544712661000000000",
         "traceId": TRACE_HEX, "spanId": SPAN_HEX, "body": {"stringValue": "scored"},
         "attributes": [s("steward.inference.id", "log-1"), s("steward.model.version", "2.0"),
                        d("steward.latency_ms", 12.25), s("steward.feature.plan", "pro"),
                        s("steward.prediction", "stay"), s("steward.label", "leave"),
                        kv("steward.error", {"boolValue": True}), s("steward.node", "n-9")]},
        {"observedTimeUnixNano": T_NS,  # no timeUnixNano: the observed time is used
         "attributes": [kv("steward.latency_ms", {"intValue": "8"}),
                        kv("steward.feature.tenure", {"intValue": "14"})]},
        {"timeUnixNano": T_NS, "body": {"stringValue": "just a log line"}},
    )
    result = map_logs(raw)
    assert (result.rejected, result.ignored) == (0, 1)
    first, second = result.records
    assert first == InferenceRecord(
        id="log-1", model="fraud-svc", version="2.0", site="paris-edge", tier="edge",
        node="n-9", ts=T, latency_ms=12.25, features={"plan": "pro"}, prediction="stay",
        label="leave", error=True, sample_rate=1.0)
    assert (second.ts, second.latency_ms, second.features) == (T, 8.0, {"tenure": 14})
    assert (second.version, second.node, second.error) == ("3.1", "node-7", False)
    assert second.id.startswith("inf-") and len(second.id) == 36  # derived from content
    assert map_logs(raw).records[1].id == second.id  # ... so a retry yields the same id
    as_pb = LOGS.parse(raw, JSON_CT).SerializeToString()
    assert map_logs(as_pb, PB_CT) == result


def test_invalid_inference_log_records_are_rejected_with_reasons():
    feature = s("steward.feature.x", "1")
    latency = d("steward.latency_ms", 5)
    raw = logs(
        {"timeUnixNano": T_NS, "attributes": [feature]},
        {"attributes": [feature, latency]},
        {"timeUnixNano": T_NS, "attributes": [feature, d("steward.latency_ms", -1),
                                              s("steward.inference.id", "neg")]},
        {"timeUnixNano": T_NS, "attributes": [feature, s("steward.latency_ms", "fast")]},
        {"timeUnixNano": T_NS, "attributes": [d("steward.prediction", "Infinity"), latency]},
        {"timeUnixNano": T_NS, "attributes": [feature, latency]},
    )
    result = map_logs(raw)
    assert (len(result.records), result.rejected, result.ignored) == (1, 5, 0)
    assert result.errors == [
        "log record 0: missing steward.latency_ms: an inference log record needs its latency",
        "log record 1: missing timeUnixNano and observedTimeUnixNano",
        "log record 2 (neg): latency_ms: Input should be greater than or equal to 0",
        "log record 3: steward.latency_ms must be a number (intValue or doubleValue), "
        "not 'fast'",
        "log record 4: steward.prediction is inf: only finite numbers are accepted",
    ]
    dead = json.loads(result.dead[0][1])
    assert dead["logRecord"]["attributes"][0]["key"] == "steward.feature.x"


# --- answers -----------------------------------------------------------------------------


def test_traces_and_logs_responses():
    assert json.loads(TRACES.response(2, "why", JSON_CT)) == {
        "partialSuccess": {"rejectedSpans": "2", "errorMessage": "why"}}
    assert json.loads(LOGS.response(1, "why", JSON_CT)) == {
        "partialSuccess": {"rejectedLogRecords": "1", "errorMessage": "why"}}
    assert TRACES.response(0, "", JSON_CT) == LOGS.response(0, "", JSON_CT) == b"{}"
    assert TRACES.response(0, "", PB_CT) == b""
    pb = ExportTraceServiceResponse.FromString(TRACES.response(3, "x", PB_CT))
    assert (pb.partial_success.rejected_spans, pb.partial_success.error_message) == (3, "x")
    pb = ExportLogsServiceResponse.FromString(LOGS.response(4, "y", PB_CT))
    assert pb.partial_success.rejected_log_records == 4
