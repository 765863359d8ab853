"""The collector application: the front door for edge and cloud telemetry."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from collector import gpu, ingest
from collector.bodies import error_headers
from collector.metrics import CollectorMetrics
from collector.publish import Publisher
from collector.settings import CollectorSettings
from steward import __version__
from steward.auth import Authenticator
from steward.bus.tracing import IngestTelemetry
from steward.errors import StewardError
from steward.telemetry import Telemetry, off

log = logging.getLogger(__name__)


def create_app(settings: CollectorSettings, publisher: Publisher, registry: CollectorRegistry,
               ready: Callable[[], bool], telemetry: Telemetry | None = None) -> FastAPI:
    """Everything the routes use is passed in here and kept on `app.state`; `telemetry`
    (default: off) traces each request and stamps its context on what it publishes."""
    app = FastAPI(title="Steward collector", version=__version__,
                  description="OTLP/HTTP and JSON ingest; answers after Kafka acknowledged.")
    app.state.settings = settings
    app.state.publisher = publisher
    app.state.registry = registry
    app.state.metrics = CollectorMetrics(registry)
    telemetry = telemetry or off()
    app.state.otel = IngestTelemetry(telemetry)
    telemetry.instrument(app)
    app.state.auth = Authenticator(settings.tokens)
    if not app.state.auth.enabled:
        log.warning("no ingest tokens configured: the collector accepts unauthenticated "
                    "writes (set STEWARD_TOKENS; see `steward token new`)")
    app.include_router(ingest.router)
    app.include_router(gpu.router)

    @app.exception_handler(StewardError)
    async def steward_error(request: Request, exc: StewardError) -> JSONResponse:
        app.state.metrics.requests.labels(request.url.path, str(exc.status)).inc()
        return JSONResponse(exc.body(), status_code=exc.status,
                            headers=error_headers(exc))

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz() -> JSONResponse:
        ok = ready()
        return JSONResponse({"status": "ok" if ok else "unavailable", "checks": {"broker": ok}},
                            status_code=200 if ok else 503)

    @app.get("/metrics", tags=["metrics"])
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
