"""Entry point of the webhook delivery deployable: the sink's runner plus the deliverer.

Two threads share one outbox: the runner (consumer group `steward-webhooks` over the
actions and alerts topics) queues deliveries before it commits offsets; the deliverer
sends them. Run one instance per outbox file; more instances need their own files and
split the topics' partitions between them through the consumer group.
"""

from __future__ import annotations

import logging
import threading
import time

from prometheus_client import CollectorRegistry, start_http_server

from steward.bus.metrics import StreamMetrics
from steward.bus.producer import Producer
from steward.bus.runner import Runner
from steward.bus.service import prepare, supervise
from steward.lifecycle import on_signals
from steward.settings import KafkaSettings
from steward.telemetry import Telemetry, from_env
from steward.webhooks.deliverer import Deliverer
from steward.webhooks.metrics import WebhookMetrics
from steward.webhooks.outbox import Outbox
from steward.webhooks.settings import WebhookSettings
from steward.webhooks.sink import Subscriptions, WebhookSink
from steward.webhooks.subscriptions import ApiSubscriptions

log = logging.getLogger(__name__)


class WebhookService:
    """The parts, wired; `start()` runs them in threads, `stop()` drains and closes."""

    def __init__(self, settings: WebhookSettings, registry: CollectorRegistry, *,
                 kafka: KafkaSettings | None = None, subscriptions: Subscriptions | None = None,
                 poll_timeout_ms: int = 500, telemetry: Telemetry | None = None) -> None:
        opts = settings.webhooks
        self.kafka = kafka or settings.kafka
        self.outbox = Outbox(settings.outbox_path)
        self.metrics = WebhookMetrics(registry)
        self.metrics.watch(registry, self.outbox, time.time)
        self.subs = subscriptions or ApiSubscriptions(
            settings.api_url, opts.admin_token, ttl_s=opts.cache_ttl_s,
            max_stale_s=opts.max_stale_s)
        self.wake = threading.Event()
        self.deliverer = Deliverer(self.outbox, self.subs, opts, self.metrics, wake=self.wake)
        sink = WebhookSink(self.outbox, self.subs, self.metrics, wake=self.wake,
                           external_url=opts.external_url)
        self.producer = Producer(self.kafka)
        self.runner = Runner(sink, kafka=self.kafka, group_id=settings.webhooks_group,
                             producer=self.producer, metrics=StreamMetrics(registry),
                             poll_timeout_ms=poll_timeout_ms, telemetry=telemetry)
        self.stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self, *, with_runner: bool = True) -> WebhookService:
        self._threads.append(threading.Thread(target=self.deliverer.run, args=(self.stopping,),
                                              name="webhook-deliverer", daemon=True))
        if with_runner:
            self._threads.append(threading.Thread(target=supervise,
                                                  args=(self.runner, self.stopping),
                                                  name="webhook-sink", daemon=True))
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.runner.stop()
        self.wake.set()
        for t in self._threads:
            t.join(timeout=15)
        self.deliverer.close()
        self.producer.close()
        if isinstance(self.subs, ApiSubscriptions):
            self.subs.close()
        self.outbox.close()


def main(settings: WebhookSettings) -> None:
    registry = CollectorRegistry()
    if settings.metrics_port:
        start_http_server(settings.metrics_port, settings.metrics_host, registry=registry)
    prepare(settings.kafka)
    telemetry = from_env("steward-webhooks")  # OTLP export only where OTEL_* says so
    telemetry.install()
    service = WebhookService(settings, registry, telemetry=telemetry)
    done = threading.Event()
    on_signals(done.set)
    log.info("webhook delivery: group %s, outbox %s, subscriptions from %s",
             settings.webhooks_group, settings.outbox_path, settings.api_url)
    service.start()
    done.wait()
    service.stop()
    telemetry.shutdown()
