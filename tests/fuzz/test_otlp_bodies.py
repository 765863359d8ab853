"""Hypothesis-made OTLP bodies (metrics, traces, logs; protobuf and JSON) and JSON
batches against the collector on the real broker: whatever comes in (garbage bytes,
truncated messages, NaN and infinities, uint64 extremes, huge strings, unicode ids,
deep JSON, wrong types), the answer is never a server error, and a refusal is a 4xx
that says why."""

from __future__ import annotations

import gzip
import json

import pytest
from google.protobuf import json_format
from google.rpc import status_pb2
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from starlette.testclient import TestClient

from tests.fuzz.conftest import AUTH, FUZZ

PB, JS = "application/x-protobuf", "application/json"
text = st.one_of(st.text(max_size=40), st.just(""), st.just("../../etc/passwd"),
                 st.just("x" * 70_000), st.sampled_from(["modèle-ü", "店-東京", "a\x00b", "🚀"]))
u64 = st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([0, 1, 2**63 - 1, 2**64 - 1]))
number = st.floats(allow_nan=True, allow_infinity=True)
KEYS = ["steward.model", "steward.model.version", "steward.site", "steward.tier", "steward.node",
        "service.name", "cloud.region", "host.name", "steward.inference.id",
        "steward.latency_ms", "steward.prediction", "steward.label", "steward.feature.x",
        "DCGM_FI_DEV_GPU_UTIL", "gpu", "UUID", "GPU_I_PROFILE"]


@st.composite
def any_value(draw) -> AnyValue:
    kind = draw(st.sampled_from(["s", "i", "d", "b", "bytes", "arr"]))
    if kind == "s":
        return AnyValue(string_value=draw(text))
    if kind == "i":
        return AnyValue(int_value=draw(st.integers(-(2**63), 2**63 - 1)))
    if kind == "d":
        return AnyValue(double_value=draw(number))
    if kind == "b":
        return AnyValue(bool_value=draw(st.booleans()))
    if kind == "bytes":
        return AnyValue(bytes_value=draw(st.binary(max_size=20)))
    value = AnyValue()
    value.array_value.values.extend([AnyValue(string_value=s) for s in draw(
        st.lists(text, max_size=3))])
    return value


def attrs(draw) -> list[KeyValue]:
    keys = draw(st.lists(st.one_of(st.sampled_from(KEYS), text), max_size=8))
    return [KeyValue(key=k, value=draw(any_value())) for k in keys]


@st.composite
def metrics(draw) -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    for _ in range(draw(st.integers(1, 2))):
        rm = req.resource_metrics.add()
        rm.resource.attributes.extend(attrs(draw))
        sm = rm.scope_metrics.add()
        for _ in range(draw(st.integers(0, 3))):
            m = sm.metrics.add(name=draw(st.one_of(st.sampled_from(
                ["steward.latency", "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_PROF_GR_ENGINE_ACTIVE"]),
                text)))
            kind = draw(st.sampled_from(["gauge", "sum", "histogram"]))
            for _ in range(draw(st.integers(0, 3))):
                if kind == "histogram":
                    dp = m.histogram.data_points.add(count=draw(u64), sum=draw(number))
                    bounds = draw(st.lists(number, max_size=4))
                    dp.explicit_bounds.extend(bounds)
                    dp.bucket_counts.extend(draw(st.lists(u64, max_size=len(bounds) + 2)))
                else:
                    points = m.gauge.data_points if kind == "gauge" else m.sum.data_points
                    dp = points.add(as_double=draw(number)) if draw(st.booleans()) else \
                        points.add(as_int=draw(st.integers(-(2**63), 2**63 - 1)))
                dp.time_unix_nano = draw(u64)
                dp.start_time_unix_nano = draw(u64)
                dp.attributes.extend(attrs(draw))
    return req


@st.composite
def traces(draw) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(attrs(draw))
    ss = rs.scope_spans.add()
    for _ in range(draw(st.integers(0, 3))):
        span = ss.spans.add(name=draw(text), trace_id=draw(st.binary(min_size=0, max_size=16)),
                            span_id=draw(st.binary(max_size=8)),
                            start_time_unix_nano=draw(u64), end_time_unix_nano=draw(u64))
        span.attributes.extend(attrs(draw))
    return req


@st.composite
def logs(draw) -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.extend(attrs(draw))
    sl = rl.scope_logs.add()
    for _ in range(draw(st.integers(0, 3))):
        rec = sl.log_records.add(time_unix_nano=draw(u64), observed_time_unix_nano=draw(u64))
        rec.body.CopyFrom(draw(any_value()))
        rec.attributes.extend(attrs(draw))
    return req


SIGNALS = {"/v1/metrics": metrics(), "/v1/traces": traces(), "/v1/logs": logs()}
json_value = st.recursive(st.one_of(st.none(), st.booleans(), number, st.integers(), text),
                          lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(text, inner, max_size=3), max_leaves=10)


@st.composite
def body(draw, message) -> tuple[bytes, str]:
    """A body for an OTLP route: the message in either encoding, then maybe mangled."""
    msg = draw(message)
    encoding = draw(st.sampled_from([PB, JS]))
    raw = msg.SerializeToString() if encoding == PB else \
        json.dumps(json_format.MessageToDict(msg)).encode()  # NaN goes out as NaN
    mangle = draw(st.sampled_from(["none", "none", "truncate", "flip", "garbage", "deep",
                                   "wrong-type"]))
    if mangle == "truncate" and raw:
        raw = raw[:draw(st.integers(0, len(raw) - 1))]
    elif mangle == "flip" and raw:
        i = draw(st.integers(0, len(raw) - 1))
        raw = raw[:i] + bytes([raw[i] ^ draw(st.integers(1, 255))]) + raw[i + 1:]
    elif mangle == "garbage":
        raw = draw(st.binary(max_size=300))
    elif mangle == "deep":
        n = draw(st.sampled_from([100, 5000, 100_000]))
        raw = b'{"resourceMetrics":' + b"[" * n + b"]" * n + b"}"
    elif mangle == "wrong-type" and encoding == JS:
        doc = json.loads(raw) if raw else {}
        key = draw(st.sampled_from(["resourceMetrics", "resourceSpans", "resourceLogs", "x"]))
        doc[key] = draw(json_value)
        raw = json.dumps(doc).encode()
    return raw, encoding


def check(resp, path: str) -> None:
    assert resp.status_code < 500 or resp.status_code == 503, (path, resp.status_code,
                                                                resp.content[:500])
    if resp.status_code >= 400:  # a refusal says why, in the request's encoding
        if resp.headers["content-type"].startswith(PB):
            assert status_pb2.Status.FromString(resp.content).message
        else:
            doc = resp.json()
            assert doc.get("message") or doc.get("detail"), doc


@pytest.fixture(scope="module")
def client(collector_app):
    with TestClient(collector_app, raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize("path", sorted(SIGNALS))
def test_otlp_bodies_never_make_a_server_error(client, path):
    @FUZZ
    @given(case=body(SIGNALS[path]), gz=st.booleans())
    def run(case: tuple[bytes, str], gz: bool) -> None:
        raw, encoding = case
        headers = {**AUTH, "content-type": encoding}
        if gz:
            raw, headers["content-encoding"] = gzip.compress(raw), "gzip"
        check(client.post(path, content=raw, headers=headers), path)
    run()


RECORD = {"model": "m", "version": "1", "site": "s", "tier": "edge",
          "ts": "2026-01-01T00:00:00Z", "latency_ms": 5}


@pytest.mark.parametrize("path", ["/v1/inferences", "/v1/profiles", "/v1/gpu/samples"])
def test_json_batches_never_make_a_server_error(client, path):
    record = st.fixed_dictionaries({}, optional={k: st.one_of(json_value, st.just(v))
                                                 for k, v in RECORD.items()})
    batch = st.one_of(json_value, st.lists(record, max_size=4),
                      st.builds(lambda rs: {"records": rs}, st.lists(record, max_size=4)))

    @FUZZ
    @given(doc=batch, raw=st.one_of(st.none(), st.binary(max_size=100)))
    def run(doc, raw: bytes | None) -> None:
        content = raw if raw is not None else json.dumps(doc).encode()
        resp = client.post(path, content=content, headers={**AUTH, "content-type": JS})
        assert resp.status_code < 500 or resp.status_code == 503, (resp.status_code, resp.text)
        if resp.status_code >= 400:
            assert resp.json().get("detail"), resp.text
    run()


def test_deep_json_batches_are_refused_with_a_reason(client):
    for n in (100, 10_000, 200_000):
        resp = client.post("/v1/inferences", content=b"[" * n + b"]" * n,
                           headers={**AUTH, "content-type": JS})
        assert resp.status_code in (400, 413), resp.text
        assert resp.json()["detail"]


@pytest.mark.parametrize("path", ["/v1/metrics", "/v1/inferences", "/v1/gpu/dcgm"])
def test_oversized_bodies_are_413(client, path):
    big = b"x" * (256 * 1024 + 1)  # the fuzz collector's limit is 256 KiB
    assert client.post(path, content=big, headers=AUTH).status_code == 413
    bomb = gzip.compress(b"[" + b" " * (4 * 1024 * 1024) + b"]")  # small on the wire
    resp = client.post(path, content=bomb, headers={**AUTH, "content-encoding": "gzip"})
    assert resp.status_code == 413, resp.text
