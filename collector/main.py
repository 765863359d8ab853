"""Entry point of the collector."""

from __future__ import annotations

import logging

import uvicorn
from prometheus_client import CollectorRegistry

from collector.app import create_app
from collector.publish import Publisher
from collector.settings import CollectorSettings
from steward.bus.admin import is_reachable
from steward.bus.producer import Producer
from steward.bus.service import prepare
from steward.lifecycle import cached
from steward.telemetry import from_env

log = logging.getLogger(__name__)


def main(settings: CollectorSettings) -> None:
    prepare(settings.kafka)
    producer = Producer(settings.kafka, retry_after_s=settings.retry_after_s)
    publisher = Publisher(producer, settings.kafka.topic_prefix, settings.max_records_per_message,
                          max_message_bytes=settings.kafka.max_message_bytes)
    registry = CollectorRegistry()
    telemetry = from_env("steward-collector")  # OTLP export only where OTEL_* says so
    telemetry.install()
    app = create_app(settings, publisher, registry,
                     ready=cached(lambda: is_reachable(settings.kafka)), telemetry=telemetry)
    log.info("collector listening on %s://%s:%d (OTLP/HTTP)", settings.tls.scheme,
             settings.host, settings.port)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning",
                **settings.tls.uvicorn_kwargs())
    producer.close()
    telemetry.shutdown()
