"""Prometheus metrics of the collector; built once per registry, passed in."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class CollectorMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "steward_collector_requests_total", "Ingest requests, by route and status code.",
            ["route", "code"], registry=registry,
        )
        self.records = Counter(
            "steward_collector_records_total",
            "Items received (records, data points, spans, log records), by signal and "
            "outcome (accepted, rejected, ignored: not for Steward).",
            ["signal", "outcome"], registry=registry,
        )
        self.publish_seconds = Histogram(
            "steward_collector_publish_duration_seconds",
            "Time from a parsed request to Kafka's acknowledgement of all its messages.",
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
        )
