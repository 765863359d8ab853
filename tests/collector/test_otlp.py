"""OTLP/HTTP metrics: bodies, parsing and mapping, against numbers worked by hand."""

from __future__ import annotations

import gzip
import json
import math
import tracemalloc
import zlib
from bisect import bisect_left
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)

from collector.otlp import (
    metrics_response,
    parse_metrics,
    read_body,
    status_body,
)
from collector.otlp_metrics import metrics_to_points
from steward.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from steward.schema import Histogram

JSON_CT = "application/json"
PB_CT = "application/x-protobuf"
T = datetime(2018, 12, 13, 14, 51, 0, 300000, tzinfo=UTC)  # 1544712660300000000 ns
T_NS = "1544712660300000000"
TRACE_HEX = "5b8efff798038103d269b633813fc60c"
SPAN_HEX = "eee19b7ec3c1b174"


@pytest.fixture(scope="module")
def example(shared_data) -> bytes:
    return (shared_data / "otlp-examples" / "metrics.json").read_bytes()


def kv(key: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"key": key, "value": value}


def s(key: str, text: str) -> dict[str, Any]:
    return kv(key, {"stringValue": text})


def body(*resources: tuple[list[dict], list[dict]]) -> bytes:
    """An OTLP JSON metrics request: one resourceMetrics per (attributes, metrics)."""
    doc = {"resourceMetrics": [
        {"resource": {"attributes": attrs}, "scopeMetrics": [{"metrics": metrics}]}
        for attrs, metrics in resources
    ]}
    return json.dumps(doc).encode()


def gauge(name: str, *points: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "gauge": {"dataPoints": list(points)}}


def points_of(raw: bytes, content_type: str = JSON_CT):
    return metrics_to_points(parse_metrics(raw, content_type))


# --- the official example ---------------------------------------------------------------


def test_official_example_maps_every_kind(example):
    result = points_of(example)
    assert (result.rejected, result.errors) == (0, [])
    by_name = {p.name: p for p in result.records}
    assert Counter(p.kind for p in result.records) == {
        "sum": 1, "gauge": 1, "histogram": 1, "exponential_histogram": 1}

    counter = by_name["my.counter"]
    assert (counter.kind, counter.value, counter.unit) == ("sum", 5.0, "1")
    assert (counter.ts, counter.start_ts, counter.temporality) == (T, T, "delta")  # enum 1
    assert counter.attributes == {"my.counter.attr": "some value"}

    g = by_name["my.gauge"]
    assert (g.value, g.ts, g.start_ts, g.temporality) == (10.0, T, None, None)

    h = by_name["my.histogram"]
    assert h.value is None and h.temporality == "delta"
    assert h.histogram == Histogram(bounds=[1.0], counts=[1, 1], count=2, sum=2.0,
                                    min=0.0, max=2.0)

    # scale 0 -> base 2**(2**0) = 2. positive offset 1, counts [0, 2]:
    #   index 1 = (2, 4] holds 0, index 2 = (4, 8] holds 2.
    # explicit buckets (upper edges): (-inf, 0] zero_count 1; (0, 2] empty (below the
    # first exponential bucket); (2, 4] 0; (4, 8] 2; overflow (8, +inf) 0.
    e = by_name["my.exponential.histogram"].histogram
    assert e == Histogram(bounds=[0.0, 2.0, 4.0, 8.0], counts=[1, 0, 0, 2, 0], count=3,
                          sum=10.0, min=0.0, max=5.0)
    assert sum(e.counts) == e.count

    for p in result.records:
        assert (p.model, p.version, p.site, p.tier) == ("my.service", "unknown", "default",
                                                        "cloud")
        assert (p.node, p.service) == (None, "my.service")
    assert len({p.id for p in result.records}) == 4


def test_protobuf_encoding_gives_the_same_points_and_ids(example):
    from_json = points_of(example)
    as_protobuf = parse_metrics(example, JSON_CT).SerializeToString()
    from_pb = points_of(as_protobuf, PB_CT)
    assert from_pb == from_json
    assert [p.id for p in from_pb.records] == [p.id for p in from_json.records]
    assert [p.id for p in points_of(example).records] == [p.id for p in from_json.records]


def test_content_type_parameters_and_case_are_ignored(example):
    assert points_of(example, "Application/JSON; charset=utf-8") == points_of(example)


# --- OTLP JSON quirks -------------------------------------------------------------------


QUIRKS = body((
    [s("service.name", "fraud-svc"), s("service.version", "3.1"), s("cloud.region", "eu-west-1"),
     s("host.name", "node-7"), s("steward.site", "paris-edge"), s("steward.tier", "edge")],
    [
        {"name": "requests", "unit": "{request}", "someFutureField": {"x": 1},
         "sum": {"aggregationTemporality": "AGGREGATION_TEMPORALITY_DELTA", "isMonotonic": True,
                 "dataPoints": [{
                     "timeUnixNano": T_NS, "startTimeUnixNano": "1544712600000000000",
                     "asInt": "42",
                     "attributes": [s("steward.model", "fraud"),
                                    s("steward.model.version", "2.0"), s("route", "/score")],
                     "exemplars": [{"timeUnixNano": T_NS, "asDouble": 1.5,
                                    "traceId": TRACE_HEX, "spanId": SPAN_HEX}],
                 }]}},
        {"name": "queue",
         "sum": {"aggregationTemporality": 2, "dataPoints": [{
             "timeUnixNano": 1544712660300000000, "asDouble": 7.5,
             "attributes": [
                 s("steward.site", "lyon-edge"),
                 kv("tags", {"arrayValue": {"values": [{"stringValue": "a"},
                                                       {"intValue": "2"}]}}),
                 kv("opts", {"kvlistValue": {"values": [kv("k", {"boolValue": True})]}}),
                 kv("blob", {"bytesValue": "AQI="}),
                 kv("n", {"intValue": "3"}), kv("ratio", {"doubleValue": 0.5}),
                 kv("on", {"boolValue": False}),
             ]}]}},
    ],
))


def test_json_quirks_ids_strings_enums_unknown_fields():
    req = parse_metrics(QUIRKS, JSON_CT)
    exemplar = req.resource_metrics[0].scope_metrics[0].metrics[0].sum.data_points[0].exemplars[0]
    assert exemplar.trace_id == bytes.fromhex(TRACE_HEX)  # 16 bytes, not 24 of base64 garbage
    assert exemplar.span_id == bytes.fromhex(SPAN_HEX)

    result = metrics_to_points(req)
    assert result.rejected == 0
    requests, queue = result.records
    # the point's steward.model/version beat service.name/version; the resource's
    # steward.site beats cloud.region; node from host.name
    assert (requests.model, requests.version, requests.site, requests.tier) == (
        "fraud", "2.0", "paris-edge", "edge")
    assert (requests.node, requests.service) == ("node-7", "fraud-svc")
    assert requests.attributes == {"route": "/score"}
    assert (requests.kind, requests.value, requests.temporality) == ("sum", 42.0, "delta")
    assert requests.unit == "{request}"
    assert requests.ts == T
    assert requests.start_ts == datetime(2018, 12, 13, 14, 50, 0, tzinfo=UTC)

    # no point-level model: service.name; the point's steward.site beats the resource's
    assert (queue.model, queue.version, queue.site, queue.tier) == (
        "fraud-svc", "3.1", "lyon-edge", "edge")
    assert (queue.value, queue.temporality, queue.ts) == (7.5, "cumulative", T)
    assert queue.attributes == {"tags": '["a",2]', "opts": '{"k":true}', "blob": "AQI=",
                                "n": 3, "ratio": 0.5, "on": False}


def test_summary_and_bucketless_histogram():
    raw = body(([s("service.name", "svc")], [
        {"name": "latency", "summary": {"dataPoints": [{
            "timeUnixNano": T_NS, "count": "4", "sum": 10,
            "quantileValues": [{"quantile": 0.5, "value": 2}, {"quantile": 0.99, "value": 4}],
        }]}},
        {"name": "sizes", "histogram": {"aggregationTemporality": 2, "dataPoints": [
            {"timeUnixNano": T_NS, "count": "5", "sum": 12.5}]}},
    ]))
    summary, sizes = points_of(raw).records
    assert (summary.kind, summary.value, summary.temporality) == ("summary", 2.5, None)  # 10/4
    assert summary.attributes == {"quantile.0.5": 2.0, "quantile.0.99": 4.0}
    # no buckets at all: one bucket (-inf, +inf) holding every value
    assert sizes.histogram == Histogram(bounds=[], counts=[5], count=5, sum=12.5)


def test_exponential_histogram_with_negative_buckets_and_scale_1():
    # scale 1 -> base = 2**(2**-1) = sqrt(2).
    # negative offset 0, counts [2]: index 0 = [-sqrt2, -1) holds 2 -> edges -sqrt2, -1.
    # zero_count 4 -> bucket up to 0.
    # positive offset -1, counts [1, 3]: index -1 = (1/sqrt2, 1] holds 1,
    #   index 0 = (1, sqrt2] holds 3 -> edges 1/sqrt2, 1, sqrt2.
    raw = body(([s("service.name", "svc")], [{"name": "x", "exponentialHistogram": {
        "aggregationTemporality": 2, "dataPoints": [{
            "timeUnixNano": T_NS, "count": "10", "scale": 1, "zeroCount": "4",
            "positive": {"offset": -1, "bucketCounts": ["1", "3"]},
            "negative": {"offset": 0, "bucketCounts": ["2"]},
        }]}}]))
    (point,) = points_of(raw).records
    r2 = math.sqrt(2)
    assert point.histogram.bounds == pytest.approx([-r2, -1.0, 0.0, 1 / r2, 1.0, r2])
    assert point.histogram.counts == [0, 2, 4, 0, 1, 3, 0]
    assert (point.histogram.count, point.histogram.sum) == (10, None)


def test_real_sdk_export_maps(shared_data):
    """What the OpenTelemetry Python SDK actually sends, exponential histogram included."""
    sdk = pytest.importorskip("opentelemetry.sdk.metrics")
    from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
    from opentelemetry.sdk.resources import Resource

    reader = InMemoryMetricReader()
    provider = sdk.MeterProvider(
        metric_readers=[reader], resource=Resource.create({"service.name": "fraud"}),
        views=[View(instrument_name="lat", aggregation=ExponentialBucketHistogramAggregation())])
    meter = provider.get_meter("test")
    meter.create_counter("reqs").add(3, {"route": "/a"})
    for v in (3.0, 30.0, 300.0):
        meter.create_histogram("lat", unit="ms").record(v)
    raw = encode_metrics(reader.get_metrics_data()).SerializeToString()
    provider.shutdown()

    result = points_of(raw, PB_CT)
    by_name = {p.name: p for p in result.records}
    assert result.rejected == 0
    assert (by_name["reqs"].value, by_name["reqs"].temporality) == (3.0, "cumulative")
    lat = by_name["lat"].histogram
    assert (lat.count, lat.sum, lat.min, lat.max, sum(lat.counts)) == (3, 333.0, 3.0, 300.0, 3)
    for v in (3.0, 30.0, 300.0):  # each value lies in a bucket that counts it
        assert lat.counts[bisect_left(lat.bounds, v)] == 1


# --- bodies -----------------------------------------------------------------------------


def test_read_body_encodings_round_trip(example):
    assert read_body(gzip.compress(example), "gzip", 1 << 20) == example
    assert read_body(gzip.compress(example), " GZIP ", 1 << 20) == example
    assert read_body(zlib.compress(example), "deflate", 1 << 20) == example
    assert read_body(example, None, 1 << 20) == example
    assert read_body(example, "identity", 1 << 20) == example
    two_members = gzip.compress(b"a" * 100) + gzip.compress(b"b" * 100)  # ~50 bytes
    assert read_body(two_members, "gzip", 200) == b"a" * 100 + b"b" * 100  # at the limit
    assert points_of(read_body(gzip.compress(example), "gzip", 1 << 20)) == points_of(example)


def test_read_body_limits_the_decompressed_size():
    bomb = gzip.compress(b"\0" * 10_000_000)
    assert len(bomb) < 20_000
    with pytest.raises(PayloadTooLarge) as err:
        read_body(bomb, "gzip", 1_000_000)
    assert err.value.status == 413
    big_bomb = gzip.compress(b"\0" * 50_000_000)
    tracemalloc.start()
    try:
        with pytest.raises(PayloadTooLarge):
            read_body(big_bomb, "gzip", 1_000_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000  # inflated incrementally: never the whole 50 MB
    with pytest.raises(PayloadTooLarge):
        read_body(b"x" * 11, None, 10)  # raw over the limit, uncompressed
    with pytest.raises(PayloadTooLarge):
        read_body(gzip.compress(b"x" * 11), "gzip", 10)


def test_read_body_rejects_bad_compression(example):
    with pytest.raises(InvalidInput, match="not valid gzip: truncated") as err:
        read_body(gzip.compress(example)[:-20], "gzip", 1 << 20)
    assert err.value.status == 400
    with pytest.raises(InvalidInput, match="not valid gzip"):
        read_body(b"plainly not gzip", "gzip", 1 << 20)
    with pytest.raises(InvalidInput, match="not valid deflate"):
        read_body(b"plainly not deflate", "deflate", 1 << 20)
    with pytest.raises(UnsupportedMediaType) as err:
        read_body(example, "br", 1 << 20)
    assert err.value.status == 415


# --- malformed requests -----------------------------------------------------------------


@pytest.mark.parametrize(("raw", "content_type", "reason"), [
    (b"\xff\xff\xff", PB_CT, "not a valid ExportMetricsServiceRequest protobuf"),
    (b'{"resourceMetrics": [', JSON_CT, "not valid JSON"),
    (b"\xff\xfe\xfa", JSON_CT, "not valid JSON"),
    (b"[]", JSON_CT, "must be a JSON object"),
    (b'{"resourceMetrics": 5}', JSON_CT, "not a valid OTLP JSON ExportMetricsServiceRequest"),
    (body(([], [gauge("g", {"timeUnixNano": T_NS, "asInt": "lots"})])), JSON_CT, "asInt"),
])
def test_malformed_bodies_are_invalid_input(raw, content_type, reason):
    with pytest.raises(InvalidInput, match=reason) as err:
        parse_metrics(raw, content_type)
    assert err.value.status == 400


@pytest.mark.parametrize("content_type", ["text/plain", "", None, "application/xml"])
def test_unsupported_content_type(example, content_type):
    with pytest.raises(UnsupportedMediaType):
        parse_metrics(example, content_type)


# --- rejections inside a request --------------------------------------------------------


def test_bad_points_are_rejected_alone():
    raw = body(
        ([s("service.name", "svc")], [
            gauge("good", {"timeUnixNano": T_NS, "asDouble": 1}),
            gauge("bad", {"timeUnixNano": T_NS, "asDouble": "NaN"}),
        ]),
        ([s("service.name", "my service")], [gauge("spaced", {"timeUnixNano": T_NS, "asInt": 1})]),
    )
    result = points_of(raw)
    assert [p.name for p in result.records] == ["good"]
    assert result.rejected == 2
    assert len(result.errors) == 2
    assert result.errors[0].startswith("metric 'bad': value:")
    assert "finite" in result.errors[0]
    assert result.errors[1].startswith("metric 'spaced': model:")
    assert "pattern" in result.errors[1]
    assert result.message == "; ".join(result.errors)


def test_points_without_time_model_or_valid_shape_are_rejected():
    raw = body(
        ([s("service.name", "svc")], [
            gauge("no-ts", {"asDouble": 1}),
            {"name": "shape", "histogram": {"dataPoints": [{
                "timeUnixNano": T_NS, "count": "3", "bucketCounts": ["1", "1", "1"],
                "explicitBounds": [1]}]}},
        ]),
        ([], [gauge("anon", {"timeUnixNano": T_NS, "asDouble": 1})]),
    )
    result = points_of(raw)
    assert (result.records, result.rejected) == ([], 3)
    assert result.errors[0] == "metric 'no-ts': missing timeUnixNano"
    assert "3 bucket counts for 1 bounds" in result.errors[1]
    assert result.errors[2] == ("metric 'anon': no model: set steward.model or the "
                                "resource's service.name")


def test_no_recorded_value_points_are_skipped_not_rejected():
    raw = body(([s("service.name", "svc")], [gauge(
        "g",
        {"timeUnixNano": T_NS, "flags": 1},
        {"timeUnixNano": T_NS, "asDouble": 2, "flags": 0},
    )]))
    result = points_of(raw)
    assert (result.rejected, result.ignored, [p.value for p in result.records]) == (0, 1, [2.0])


# --- answers ----------------------------------------------------------------------------


def test_metrics_response_json_and_protobuf():
    partial = json.loads(metrics_response(2, "2 points rejected", "application/json"))
    # int64 comes out as a decimal string in protobuf JSON, as OTLP JSON expects
    assert partial == {"partialSuccess": {"rejectedDataPoints": "2",
                                          "errorMessage": "2 points rejected"}}
    assert metrics_response(0, "ignored", JSON_CT) == b"{}"

    resp = ExportMetricsServiceResponse.FromString(metrics_response(3, "why", PB_CT))
    assert (resp.partial_success.rejected_data_points, resp.partial_success.error_message) == (
        3, "why")
    assert metrics_response(0, "", PB_CT) == b""  # partial_success unset on full success


def test_status_body_maps_http_to_grpc_codes():
    raw, media = status_body(400, "bad data", "application/json; charset=utf-8")
    assert media == JSON_CT
    assert json.loads(raw) == {"code": 3, "message": "bad data"}

    raw, media = status_body(503, "broker down", PB_CT)
    assert media == PB_CT
    status = status_pb2.Status.FromString(raw)
    assert (status.code, status.message) == (14, "broker down")

    codes = {http: json.loads(status_body(http, "m", JSON_CT)[0])["code"]
             for http in (413, 415, 429, 401, 403, 500)}
    assert codes == {413: 3, 415: 3, 429: 8, 401: 16, 403: 7, 500: 2}
    assert status_body(415, "use JSON", "text/plain")[1] == JSON_CT  # unknown: answer JSON
