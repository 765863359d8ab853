"""Prometheus metrics of webhook delivery; built once per registry, passed in.

Counters count what happened; the outbox gauges (depth per state, age of the oldest
pending delivery) are read from the outbox at scrape time, so they are right across
restarts and include rows queued by an earlier run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from steward.webhooks.outbox import Outbox


class OutboxGauges(Collector):
    def __init__(self, outbox: Outbox, clock: Callable[[], float]) -> None:
        self.outbox = outbox
        self.clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stats = self.outbox.stats()
        depth = GaugeMetricFamily("steward_webhook_queue_depth",
                                  "Deliveries in the outbox, by state.", labels=["state"])
        for state, n in stats.by_state.items():
            depth.add_metric([state], n)
        yield depth
        oldest = stats.oldest_pending_created_at
        yield GaugeMetricFamily(
            "steward_webhook_oldest_pending_age_seconds",
            "Age of the oldest delivery still pending (0: none).",
            value=0.0 if oldest is None else max(0.0, self.clock() - oldest))


class WebhookMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.enqueued = Counter("steward_webhook_enqueued_total",
                                "Deliveries queued (one per event and matching subscription).",
                                registry=registry)
        self.deliveries = Counter(
            "steward_webhook_deliveries_total",
            "Delivery attempts' outcomes: delivered, retried, dead, gone (410), parked.",
            ["outcome"], registry=registry)
        self.attempts = Counter(
            "steward_webhook_attempts_total",
            "HTTP attempts by result: 2xx, 4xx, 5xx, 410, timeout, error.",
            ["result"], registry=registry)
        self.seconds = Histogram(
            "steward_webhook_attempt_duration_seconds", "Time of one HTTP attempt.",
            registry=registry, buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))

    def watch(self, registry: CollectorRegistry, outbox: Outbox,
              clock: Callable[[], float]) -> None:
        registry.register(OutboxGauges(outbox, clock))
