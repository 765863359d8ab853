"""Entry point of one processor: build settings, the processor and the runner; run."""

from __future__ import annotations

import logging
import threading

from prometheus_client import CollectorRegistry, start_http_server

from processors.registry import build
from processors.settings import ProcessorSettings
from steward.bus.metrics import StreamMetrics
from steward.bus.producer import Producer
from steward.bus.runner import Runner
from steward.bus.service import prepare, supervise
from steward.lifecycle import on_signals
from steward.telemetry import from_env

log = logging.getLogger(__name__)


def main(name: str, settings: ProcessorSettings) -> None:
    processor = build(name, settings)
    registry = CollectorRegistry()
    if settings.metrics_port:
        start_http_server(settings.metrics_port, settings.metrics_host, registry=registry)
    prepare(settings.kafka)
    producer = Producer(settings.kafka)
    telemetry = from_env(f"steward-processor-{name}")  # OTLP export only where OTEL_* says so
    telemetry.install()
    runner = Runner(processor, kafka=settings.kafka, group_id=settings.group_prefix + name,
                    producer=producer, metrics=StreamMetrics(registry), telemetry=telemetry)
    stop = threading.Event()

    def shutdown() -> None:
        stop.set()
        runner.stop()

    on_signals(shutdown)
    log.info("processor %s starting (group %s)", name, runner.group_id)
    supervise(runner, stop)
    producer.close()
    telemetry.shutdown()
