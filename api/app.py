"""The API application: audit queries, health and metrics over the store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Gauge

from api.cached import Cached
from api.charts import Charted, ChartSampler
from api.decisions import DecisionStore
from api.fleet import FleetStore
from api.fleet_gauges import FleetViewGauges
from api.fleet_metrics import FleetGauges
from api.fleet_split import FleetSplit, SavingsSettings
from api.governance_metrics import GovernanceGauges
from api.gpu import GpuCostGauges, GpuGauges, GpuStore
from api.references import ReferenceStore
from api.rollout_runs import RolloutGauges, RolloutRuns
from api.routers import audit, cost, drift, events, gpu, health, inferences, metrics, references
from api.routers import fleet as fleet_router
from api.routers import ui as ui_router
from api.routers import webhooks as webhooks_router
from api.routers.models import router as models_router
from api.routers.rollouts import router as rollouts_router
from api.store import Store
from api.verdicts import DriftGauges, VerdictStore
from api.webhooks import WebhookStore
from steward import __version__
from steward.auth import Authenticator
from steward.errors import StewardError
from steward.gpu.prices import Catalogue

MAX_BODY_BYTES = 1024 * 1024
"""Largest request body the API reads (413 above): JSON declarations are small; the
reference upload route sets its own, larger limit."""


def create_app(store: Store, registry: CollectorRegistry,
               checks: dict[str, Callable[[], bool]], catalogue: Catalogue | None = None,
               *, gpu_cost_period: timedelta = timedelta(hours=1),
               clock: Callable[[], datetime] = lambda: datetime.now(UTC),
               fleet: SavingsSettings | None = None,
               auth: Authenticator | None = None,
               charts: ChartSampler | None = None, charts_interval_s: float = 5.0,
               charts_points: int = 360, store_gauges_ttl_s: float = 0.0) -> FastAPI:
    """Everything the handlers use is passed in: no globals, easy to test. `clock` is
    the present the GPU cost gauges look back from (`gpu_cost_period`). `auth` guards
    the /audit routes (admin scope); none configured means auth is off. `charts` samples
    for GET /ui (its `run` is the caller's to start); by default it samples only the
    collectors behind the charted families, every `charts_interval_s`, keeping
    `charts_points` samples. The gauges aggregating a trailing period of stored telemetry
    (GPU cost, fleet split) are recomputed at most every `store_gauges_ttl_s`."""
    app = FastAPI(title="Steward API", version=__version__,
                  description="Audit queries, events, health and metrics of Steward.",
                  max_body_size=MAX_BODY_BYTES)
    app.state.store = store
    app.state.references = ReferenceStore(store)
    app.state.verdicts = VerdictStore(store)
    app.state.decisions = DecisionStore(store)
    app.state.auth = auth or Authenticator(())
    app.state.webhooks = WebhookStore(store, clock)
    app.state.gpu = GpuStore(store, catalogue)
    app.state.rollout_runs = RolloutRuns(store)  # every analysis run, for audit and gauges
    charted = (DriftGauges(app.state.verdicts), GpuGauges(app.state.gpu),
               Cached(GpuCostGauges(app.state.gpu, gpu_cost_period, clock),
                      store_gauges_ttl_s), GovernanceGauges(store),
               FleetGauges(store), RolloutGauges(app.state.rollout_runs))  # the charts' ones
    app.state.fleet = FleetStore(store)  # GET /fleet*: `fleet` prices its savings
    app.state.fleet_split = FleetSplit(store, catalogue or Catalogue(), fleet or SavingsSettings(),
                                       clock)
    fleet_view = Cached(FleetViewGauges(app.state.fleet, app.state.fleet_split),
                        store_gauges_ttl_s)
    for collector in (*charted, fleet_view):
        registry.register(collector)
    app.state.registry = registry
    app.state.charts = charts or ChartSampler(Charted(registry, charted), clock,
                                              interval_s=charts_interval_s, points=charts_points)
    app.state.checks = checks

    @app.exception_handler(StewardError)
    async def steward_error(request: Request, exc: StewardError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)
    stored = Gauge("steward_store_events", "Events held in the store.", registry=registry)
    stored.set_function(store.count_events)
    records = Gauge("steward_store_inference_records", "Inference records held in the store.",
                    registry=registry)
    records.set_function(store.count_inferences)
    for router in (health.router, events.router, inferences.router, references.router,
                   drift.router, metrics.router, gpu.router, cost.router, audit.router):
        app.include_router(router)
    app.include_router(webhooks_router.router)
    app.include_router(rollouts_router)
    app.include_router(models_router)
    app.include_router(fleet_router.router)
    app.include_router(ui_router.router)
    return app
