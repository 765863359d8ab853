"""The whole loop on real parts: OTel SDK -> collector -> Kafka -> processor -> Kafka ->
sink -> DuckDB -> API, with an independent Kafka client watching the actions topic."""

from __future__ import annotations

import json
import random
import time

import httpx
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource

from processors.canary_latency import CanaryLatency, CanarySpec
from steward import topics as T

SPEC = CanarySpec(model="fraud-detector", baseline_version="1.4.0", canary_version="1.5.0",
                  factor=1.5, window_s=3, grace_s=1, min_samples=20)
BOUNDS = [5, 10, 15, 20, 25, 30, 40, 50, 60, 80, 100, 150, 200, 300, 500, 1000]


def sdk_provider(collector_url: str, version: str) -> MeterProvider:
    """A cloud service's own OpenTelemetry SDK setup, as a user would write it."""
    exporter = OTLPMetricExporter(endpoint=f"{collector_url}/v1/metrics",
                                  preferred_temporality={Histogram: AggregationTemporality.DELTA})
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    resource = Resource.create({"service.name": "fraud-detector", "service.version": version,
                                "cloud.region": "eu-west-1", "steward.tier": "cloud",
                                "host.name": f"cloud-{version}"})
    view = View(instrument_name="steward.inference.latency",
                aggregation=ExplicitBucketHistogramAggregation(boundaries=BOUNDS))
    return MeterProvider(resource=resource, metric_readers=[reader], views=[view])


def test_regressed_canary_is_rolled_back_end_to_end(kafka, start_collector, start_runner,
                                                    start_gate, start_api, topic_reader, wait):
    collector = start_collector()
    start_runner(CanaryLatency([SPEC]))
    start_gate()  # rollbacks pass the governance gate
    api, _ = start_api()
    rng = random.Random(1)
    time.sleep(SPEC.window_s - time.time() % SPEC.window_s + 0.05)  # both exports in one window
    providers = {v: sdk_provider(collector.url, v) for v in ("1.4.0", "1.5.0")}
    for version, slow in (("1.4.0", 1.0), ("1.5.0", 3.0)):
        hist = providers[version].get_meter("svc").create_histogram(
            "steward.inference.latency", unit="ms")
        for _ in range(200):
            hist.record(rng.lognormvariate(3.0, 0.2) * slow)
        assert providers[version].force_flush(10_000)

    actions = T.ACTIONS.full(kafka.topic_prefix)
    msgs = wait(lambda: topic_reader(actions), timeout_s=30, what="a rollback on Kafka")
    assert len(msgs) == 1
    headers = msgs[0]["headers"]
    assert headers["ce_type"] == "steward.model.rolled_back"
    assert headers["ce_specversion"] == "1.0"
    assert msgs[0]["key"] == "fraud-detector"
    data = json.loads(msgs[0]["value"])
    assert (data["canary_version"], data["baseline_version"], data["site"]) == \
        ("1.5.0", "1.4.0", "eu-west-1")
    assert data["baseline"]["count"] == 200 and data["canary"]["count"] == 200
    assert data["canary"]["method"] == "histogram"
    assert data["ratio"] > 1.5 and data["threshold"] == 1.5

    page = wait(lambda: httpx.get(f"{api.url}/events").json()["events"], timeout_s=20,
                what="the event in GET /events")
    assert [e["id"] for e in page] == [headers["ce_id"]]
    assert page[0]["type"] == "steward.model.rolled_back"
    assert page[0]["data"] == data
    assert page[0]["specversion"] == "1.0" and page[0]["partitionkey"] == "fraud-detector"
    assert httpx.get(f"{api.url}/events", params={"type": "steward.model.promoted"}).json()[
        "events"] == []
    for p in providers.values():
        p.shutdown()
