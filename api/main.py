"""Entry point of the API/sink process: the one process that owns the DuckDB file."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import uvicorn
from prometheus_client import CollectorRegistry

from api.app import create_app
from api.audit_sql import lock_down
from api.charts import ChartSampler
from api.decisions import DecisionSink
from api.fleet import FleetNodeSink
from api.gpu import GpuUsageSink
from api.references import ReferenceCapture
from api.rollout_runs import RolloutRunSink
from api.settings import ApiSettings
from api.sink import EventSink, InferenceSink
from api.store import Store
from api.verdicts import VerdictSink
from steward.auth import Authenticator
from steward.bus.admin import is_reachable
from steward.bus.metrics import StreamMetrics
from steward.bus.producer import Producer
from steward.bus.runner import Runner
from steward.bus.service import prepare, supervise
from steward.bus.tracing import stamp
from steward.gpu.prices import Catalogue
from steward.lifecycle import cached
from steward.telemetry import from_env

log = logging.getLogger(__name__)


def main(settings: ApiSettings) -> None:
    prepare(settings.kafka)
    store = Store(settings.db_path)
    lock_down(store)  # no file or network access from SQL: /audit/query cannot reach out
    registry = CollectorRegistry()
    producer = Producer(settings.kafka)
    metrics = StreamMetrics(registry)
    telemetry = from_env("steward-api")  # OTLP export only where OTEL_* says so
    telemetry.install()
    threads: list[threading.Thread] = []
    checks = {"store": store.ping, "broker": cached(lambda: is_reachable(settings.kafka)),
              "sinks": lambda: bool(threads) and all(t.is_alive() for t in threads)}
    catalogue = Catalogue.load(settings.gpu_prices_file) if settings.gpu_prices_file else None
    app = create_app(store, registry, checks, catalogue,
                     gpu_cost_period=timedelta(seconds=settings.gpu_cost_period_s),
                     fleet=settings.fleet_savings, auth=Authenticator(settings.tokens),
                     charts_interval_s=settings.charts_interval_s,
                     charts_points=settings.charts_points,
                     store_gauges_ttl_s=settings.store_gauges_ttl_s)
    charts: ChartSampler = app.state.charts
    app.state.publish = producer.send_all  # POST /rollouts puts declarations on Kafka
    if telemetry.tracing:  # ... carrying the request's trace context
        app.state.publish = lambda outs: producer.send_all(stamp(outs))
    telemetry.instrument(app)
    app.state.topic_prefix = settings.kafka.topic_prefix
    if not settings.tokens:
        log.warning("no tokens configured: the API (audit, webhooks, rollouts included) is "
                    "open to anyone who can reach it")
    capture = ReferenceCapture(app.state.references, settings.capture_reference_rows)
    runners = [Runner(sink, kafka=settings.kafka, group_id=f"{settings.sink_group}-{sink.name}",
                      producer=producer, metrics=metrics, telemetry=telemetry,
                      fetch_min_bytes=settings.sink_fetch_min_bytes,
                      fetch_max_wait_ms=settings.sink_fetch_wait_ms)
               for sink in (EventSink(store), InferenceSink(store, capture),
                            VerdictSink(app.state.verdicts), GpuUsageSink(app.state.gpu),
                            RolloutRunSink(app.state.rollout_runs),
                            DecisionSink(app.state.decisions), FleetNodeSink(app.state.fleet))]
    stop = threading.Event()
    threads += [threading.Thread(target=supervise, args=(r, stop), name=r.name, daemon=True)
                for r in runners]
    sampler = threading.Thread(target=charts.run, args=(stop,), name="charts", daemon=True)
    for t in [*threads, sampler]:
        t.start()
    log.info("API on %s://%s:%d, store %s", settings.tls.scheme, settings.host, settings.port,
             settings.db_path)
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning",
                    **settings.tls.uvicorn_kwargs())
    finally:
        stop.set()
        for r in runners:
            r.stop()
        for t in threads:
            t.join(timeout=15)
        producer.close()
        store.close()
        telemetry.shutdown()
