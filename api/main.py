"""Entry point of the API/sink process: the one process that owns the DuckDB file."""

from __future__ import annotations

import logging
import threading

import uvicorn
from prometheus_client import CollectorRegistry

from api.app import create_app
from api.settings import ApiSettings
from api.sink import EventSink
from api.store import Store
from steward.bus.admin import is_reachable
from steward.bus.metrics import StreamMetrics
from steward.bus.producer import Producer
from steward.bus.runner import Runner
from steward.bus.service import cached, prepare, supervise

log = logging.getLogger(__name__)


def main(settings: ApiSettings) -> None:
    prepare(settings.kafka)
    store = Store(settings.db_path)
    registry = CollectorRegistry()
    producer = Producer(settings.kafka)
    runner = Runner(EventSink(store), kafka=settings.kafka, group_id=settings.sink_group,
                    producer=producer, metrics=StreamMetrics(registry))
    stop = threading.Event()
    sink = threading.Thread(target=supervise, args=(runner, stop), name="sink", daemon=True)
    checks = {"store": store.ping, "broker": cached(lambda: is_reachable(settings.kafka)),
              "sink": sink.is_alive}
    app = create_app(store, registry, checks)
    sink.start()
    log.info("API on http://%s:%d, store %s", settings.host, settings.port, settings.db_path)
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
    finally:
        stop.set()
        runner.stop()
        sink.join(timeout=15)
        producer.close()
        store.close()
