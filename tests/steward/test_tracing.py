"""Steward's own telemetry: trace context through Kafka headers, the spans and metrics of a
stage, and providers built from the OTEL_* variables. Real SDK providers with in-memory
exporters; real kafka-python records."""

from __future__ import annotations

import pytest
from kafka.consumer.fetcher import ConsumerRecord
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from steward.bus.producer import Out
from steward.bus.tracing import IngestTelemetry, StageTelemetry, extract, stamp
from steward.codec import JSON_HEADERS
from steward.stream import Source
from steward.telemetry import Telemetry, from_env

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE}-{PARENT}-01".encode()
CE = [("ce_id", b"e1"), ("ce_type", b"steward.model.rolled_back"), ("ce_source", b"/x"),
      ("ce_specversion", b"1.0")]


@pytest.fixture
def otel() -> tuple[Telemetry, InMemorySpanExporter, InMemoryMetricReader]:
    spans = InMemorySpanExporter()
    tracer = TracerProvider()
    tracer.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    yield Telemetry(tracer, MeterProvider(metric_readers=[reader]), True, True), spans, reader
    tracer.shutdown()


def record(offset: int, headers: list[tuple[str, bytes]], key: bytes = b"m/s") -> ConsumerRecord:
    return ConsumerRecord("in", 3, -1, offset, 0, 0, key, b"{}", headers, None, 3, 2, -1)


def points(reader: InMemoryMetricReader) -> dict[str, list]:
    out: dict[str, list] = {}
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                out[m.name] = list(m.data.data_points)
    return out


def test_stamp_carries_the_current_span_and_extract_reads_it_back(otel):
    tel = otel[0]
    outs = [Out("a", b"k", b"v", JSON_HEADERS), Out("b", b"k", b"v", [*CE,
                                                                    ("traceparent", b"old")])]
    with tel.tracer().start_as_current_span("s") as span:
        stamped = stamp(outs)
    ctx = span.get_span_context()
    want = f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}".encode()
    assert dict(stamped[0].headers)["traceparent"] == want
    assert "traceparent" not in dict(JSON_HEADERS)  # the shared constant is never changed
    assert [v for k, v in stamped[1].headers if k == "traceparent"] == [want]  # replaced
    assert dict(stamped[1].headers)["ce_traceparent"] == want  # CloudEvents tracing extension
    assert "ce_traceparent" not in dict(stamped[0].headers)  # not a CloudEvent
    back = trace.get_current_span(extract(stamped[0].headers)).get_span_context()
    assert (back.trace_id, back.span_id, back.is_remote) == (ctx.trace_id, ctx.span_id, True)


def test_no_context_no_header():
    outs = [Out("a", None, b"v", JSON_HEADERS)]
    assert stamp(outs) == outs
    assert not trace.get_current_span(extract(None)).get_span_context().is_valid


def test_a_processor_gets_a_consumer_span_per_message_under_the_senders_context(otel):
    tel, spans, reader = otel
    stage = StageTelemetry(tel, "canary-latency", "grp", is_processor=True)
    messages = [record(7, [("traceparent", TRACEPARENT)]), record(8, [])]
    items = [("r0", Source("in", 3, 7, b"m/s", 0)), ("r1", Source("in", 3, 7, b"m/s", 1)),
             ("r2", Source("in", 3, 8, b"m/s", 0))]
    seen: list[tuple[list, int]] = []

    def run(batch: list) -> list[Out]:
        seen.append(([r for r, _ in batch], trace.get_current_span().get_span_context().span_id))
        return [Out("out", b"m", b"v", list(CE))]

    outs = stage.process("in", 3, messages, items, run)
    first, second = spans.get_finished_spans()
    assert [s for s, _ in seen] == [["r0", "r1"], ["r2"]]  # one span per message, in order
    assert first.kind == SpanKind.CONSUMER and first.name == "process in"
    assert (first.context.trace_id, first.parent.span_id) == (int(TRACE, 16), int(PARENT, 16))
    assert dict(first.attributes) == {
        "messaging.system": "kafka", "messaging.operation.name": "process",
        "messaging.operation.type": "process", "messaging.destination.name": "in",
        "messaging.destination.partition.id": "3", "messaging.consumer.group.name": "grp",
        "steward.stage": "canary-latency", "messaging.kafka.offset": 7,
        "messaging.kafka.message.key": "m/s", "steward.records": 2}
    assert second.parent is None and second.context.trace_id != int(TRACE, 16)  # a new trace
    assert [s.context.span_id for s in (first, second)] == [i for _, i in seen]
    for out, span in zip(outs, (first, second), strict=True):
        assert dict(out.headers)["traceparent"].decode().split("-")[1:3] == \
            [f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}"]

    stage.batch_done(0.25)
    got = points(reader)
    assert got["steward.processing.records"][0].value == 3
    emitted = got["steward.processing.emitted"][0]
    assert emitted.value == 2 and emitted.attributes["cloudevents.event_type"] == \
        "steward.model.rolled_back"
    duration = got["steward.processing.duration"][0]
    assert (duration.count, duration.sum) == (1, 0.25)


def test_a_tick_continues_the_partitions_latest_input_and_links_the_others(otel):
    tel, spans, _ = otel
    stage = StageTelemetry(tel, "canary-latency", "grp", is_processor=True)
    other = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    messages = [record(1, [("traceparent", other)]), record(2, [("traceparent", TRACEPARENT)])]
    items = [("a", Source("in", 3, 1)), ("b", Source("in", 3, 2))]
    stage.process("in", 3, messages, items, lambda batch: [])
    outs = stage.ticked(3, [Out("out", b"m", b"v", list(CE))])
    consumed, latest, tick = spans.get_finished_spans()
    assert tick.name == "canary-latency tick" and tick.parent.span_id == latest.context.span_id
    assert tick.context.trace_id == int(TRACE, 16)
    assert [link.context.span_id for link in tick.links] == [consumed.context.span_id]
    assert TRACE in dict(outs[0].headers)["traceparent"].decode()


def test_a_sink_batch_links_every_message(otel):
    tel, spans, _ = otel
    stage = StageTelemetry(tel, "events", "grp", is_processor=False)
    messages = [record(1, [("traceparent", TRACEPARENT)]), record(2, [])]
    items = [("a", Source("in", 3, 1)), ("b", Source("in", 3, 2))]
    stage.process("in", 3, messages, items, lambda batch: [])
    (span,) = spans.get_finished_spans()
    assert span.parent is None and span.attributes["messaging.batch.message_count"] == 2
    assert [(link.context.trace_id, link.context.span_id) for link in span.links] == \
        [(int(TRACE, 16), int(PARENT, 16))]  # the untraced message has nothing to link


def test_ingest_stamps_under_a_producer_span_and_counts(otel):
    tel, spans, reader = otel
    ingest = IngestTelemetry(tel)
    with ingest.sending([Out("t", b"k", b"v", JSON_HEADERS)]) as outs:
        pass
    ingest.ingested("inferences", "accepted", 5)
    (span,) = spans.get_finished_spans()
    assert span.kind == SpanKind.PRODUCER and span.attributes["messaging.destination.name"] == "t"
    assert f"{span.context.span_id:016x}" in dict(outs[0].headers)["traceparent"].decode()
    assert points(reader)["steward.ingest.records"][0].value == 5


def test_ingest_off_changes_nothing():
    ingest = IngestTelemetry(from_env("steward-collector", {}))
    outs = [Out("t", b"k", b"v", JSON_HEADERS)]
    with ingest.sending(outs) as sent:
        assert sent is outs


@pytest.mark.parametrize(("env", "tracing", "metering"), [
    ({}, False, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}, True, True),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:9/v1/traces"}, True, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_METRICS_EXPORTER": "none"},
     True, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_SDK_DISABLED": "true"},
     False, False),
])
def test_providers_exist_only_where_an_endpoint_is_set(env, tracing, metering):
    tel = from_env("steward-api", env)
    try:
        assert (tel.tracing, tel.metering) == (tracing, metering)
        assert isinstance(tel.tracer_provider, TracerProvider) == tracing
        assert isinstance(tel.meter_provider, MeterProvider) == metering
    finally:
        tel.shutdown()


def test_service_name_defaults_per_deployable_and_the_environment_wins(monkeypatch):
    env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:9/v1/traces"}
    tel = from_env("steward-processor-drift-judge", env)
    assert tel.tracer_provider.resource.attributes["service.name"] == \
        "steward-processor-drift-judge"
    tel.shutdown()
    monkeypatch.setenv("OTEL_SERVICE_NAME", "judge-eu")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod")
    tel = from_env("steward-processor-drift-judge", env)
    attrs = tel.tracer_provider.resource.attributes
    assert (attrs["service.name"], attrs["deployment.environment"]) == ("judge-eu", "prod")
    tel.shutdown()


def test_the_collector_traces_ingest_requests_not_probes_or_scrapes(otel):
    from fastapi.testclient import TestClient
    from prometheus_client import CollectorRegistry

    from collector.app import create_app
    from collector.publish import Publisher
    from collector.settings import CollectorSettings
    from steward.bus.producer import Producer
    from steward.settings import KafkaSettings

    tel, spans, _ = otel
    kafka = KafkaSettings(bootstrap_servers="127.0.0.1:9")  # never reached: bad bodies only
    app = create_app(CollectorSettings(kafka=kafka), Publisher(Producer(kafka), "", 10),
                     CollectorRegistry(), ready=lambda: True, telemetry=tel)
    client = TestClient(app)
    for path in ("/healthz", "/readyz", "/metrics"):
        assert client.get(path).status_code in (200, 503)
    resp = client.post("/v1/metrics", content=b"not protobuf",
                       headers={"content-type": "application/x-protobuf",
                                "traceparent": TRACEPARENT.decode()})
    assert resp.status_code == 400
    (span,) = spans.get_finished_spans()
    assert (span.name, span.kind, span.context.trace_id, span.parent.span_id) == \
        ("POST /v1/metrics", SpanKind.SERVER, int(TRACE, 16), int(PARENT, 16))
    status = span.attributes.get("http.response.status_code")  # stable HTTP conventions
    assert (status or span.attributes["http.status_code"]) == 400  # or the older ones
