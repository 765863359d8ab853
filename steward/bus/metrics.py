"""Prometheus metrics of the shared runner; built once per registry, passed in."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class StreamMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.records = Counter(
            "steward_stream_records_total",
            "Input records handled by a stage, by outcome (ok, rejected, failed).",
            ["stage", "topic", "outcome"], registry=registry,
        )
        self.emitted = Counter(
            "steward_stream_emitted_total", "Messages a stage produced, by topic.",
            ["stage", "topic"], registry=registry,
        )
        self.skipped = Counter(
            "steward_stream_skipped_messages_total",
            "Messages a stage left undecoded: their key holds nothing it uses (`accepts`).",
            ["stage", "topic"], registry=registry,
        )
        self.deadletters = Counter(
            "steward_deadletter_records_total",
            "Records sent to the dead-letter topic, by stage and error type.",
            ["stage", "error_type"], registry=registry,
        )
        self.errors = Counter(
            "steward_stream_errors_total",
            "Errors in a stage's loop (retried or dead-lettered), by kind.",
            ["stage", "kind"], registry=registry,
        )
        self.batch_seconds = Histogram(
            "steward_stream_batch_duration_seconds",
            "Time to process, produce and commit one polled batch.",
            ["stage"], registry=registry,
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
