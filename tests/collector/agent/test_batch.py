"""Merging spooled entries into one request: the OTLP examples from the spec repo, and
inference batches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from collector.agent.batch import encode_records, merge
from collector.agent.signals import SIGNALS
from collector.agent.spool import Entry
from collector.otlp import JSON, PROTOBUF, parse_otlp
from steward.errors import InvalidInput


def entry(i: int, signal: str, content_type: str, body: bytes, records: int = 1) -> Entry:
    return Entry(i, signal, content_type, records, len(body), 0.0, body)


@pytest.fixture
def metrics_pb(shared_data: Path) -> ExportMetricsServiceRequest:
    raw = (shared_data / "otlp-examples" / "metrics.json").read_bytes()
    return parse_otlp(raw, JSON, ExportMetricsServiceRequest)


def test_two_otlp_protobuf_entries_merge_into_one_request(metrics_pb):
    second = ExportMetricsServiceRequest()
    second.CopyFrom(metrics_pb)
    second.resource_metrics[0].resource.attributes[0].value.string_value = "other.service"
    n = SIGNALS["metrics"].count(metrics_pb)
    entries = [entry(1, "metrics", PROTOBUF, metrics_pb.SerializeToString(), n),
               entry(2, "metrics", PROTOBUF, second.SerializeToString(), n)]

    batch = merge(entries)

    assert batch.content_type == PROTOBUF and batch.ids == [1, 2] and batch.records == 2 * n
    merged = ExportMetricsServiceRequest.FromString(batch.body)
    assert [rm.resource.attributes[0].value.string_value for rm in merged.resource_metrics] \
        == ["my.service", "other.service"]
    assert merged.resource_metrics[0] == metrics_pb.resource_metrics[0]
    assert SIGNALS["metrics"].count(merged) == 2 * n


def test_otlp_json_entries_are_merged_and_forwarded_as_protobuf(shared_data: Path):
    raw = (shared_data / "otlp-examples" / "trace.json").read_bytes()
    expected = parse_otlp(raw, JSON, ExportTraceServiceRequest)
    batch = merge([entry(1, "traces", JSON, raw), entry(2, "traces", "application/json; x=y", raw)])
    assert batch.content_type == PROTOBUF
    merged = ExportTraceServiceRequest.FromString(batch.body)
    assert list(merged.resource_spans) == [expected.resource_spans[0]] * 2
    span = merged.resource_spans[0].scope_spans[0].spans[0]
    assert span.trace_id.hex() == "5b8efff798038103d269b633813fc60c"  # hex ids kept right


def test_a_single_protobuf_entry_goes_as_stored(metrics_pb):
    raw = metrics_pb.SerializeToString()
    assert merge([entry(7, "metrics", PROTOBUF, raw)]).body is raw


def test_two_inference_entries_concatenate_their_records():
    a = encode_records([{"id": "a1"}, {"id": "a2"}])
    b = encode_records([{"id": "b1"}])
    batch = merge([entry(1, "inferences", JSON, a, 2), entry(2, "inferences", JSON, b, 1)])
    assert batch.content_type == JSON and batch.records == 3
    assert json.loads(batch.body) == {"records": [{"id": "a1"}, {"id": "a2"}, {"id": "b1"}]}
    assert merge([entry(1, "inferences", JSON, a, 2)]).body is a


def test_an_entry_that_does_not_parse_refuses_the_merge():
    good = encode_records([{"id": "a1"}])
    with pytest.raises(InvalidInput, match="spool entry 2 is not JSON"):
        merge([entry(1, "inferences", JSON, good), entry(2, "inferences", JSON, b"\x00garbage")])
    with pytest.raises(InvalidInput, match="not a valid ExportMetricsServiceRequest"):
        merge([entry(1, "metrics", PROTOBUF, b""), entry(2, "metrics", PROTOBUF, b"\xff\xff")])


def test_signals_never_mix():
    with pytest.raises(ValueError, match="different signals"):
        merge([entry(1, "inferences", JSON, b"{}"), entry(2, "metrics", PROTOBUF, b"")])
