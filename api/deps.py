"""Dependency aliases for every router: what a handler may ask for."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from prometheus_client import CollectorRegistry

from api.charts import ChartSampler
from api.decisions import DecisionStore
from api.fleet import FleetStore
from api.fleet_split import FleetSplit
from api.gpu import GpuStore
from api.references import ReferenceStore
from api.rollout_runs import RolloutRuns
from api.store import Store
from api.verdicts import VerdictStore
from api.webhooks import WebhookStore
from steward.auth import Authenticator, Principal


def _store(request: Request) -> Store:
    return request.app.state.store


def _references(request: Request) -> ReferenceStore:
    return request.app.state.references


def _verdicts(request: Request) -> VerdictStore:
    return request.app.state.verdicts


def _rollout_runs(request: Request) -> RolloutRuns:
    return request.app.state.rollout_runs


def _gpu(request: Request) -> GpuStore:
    return request.app.state.gpu


def _fleet(request: Request) -> FleetStore:
    return request.app.state.fleet


def _fleet_split(request: Request) -> FleetSplit:
    return request.app.state.fleet_split


def _decisions(request: Request) -> DecisionStore:
    return request.app.state.decisions


def _webhooks(request: Request) -> WebhookStore:
    return request.app.state.webhooks


_SCOPES = {
    "admin": "audit data shows every model's decisions and inputs, so reading it is an "
             "admin's right, not a reader's; every route that changes state (references, "
             "rollouts, versions, webhooks) needs it too",
    "read": "stored records, verdicts, costs",
    "ingest": "what an edge agent holds, so it can fetch the profile spec it sends to "
              "without also reading everyone's records",
}


def _scope(scope: str) -> Callable[[Request], Principal]:
    """The dependency that yields the caller if its token has `scope` (401/403 else):
    one guard for every scope, so they cannot drift apart."""

    def guard(request: Request) -> Principal:
        auth: Authenticator = request.app.state.auth
        return auth.authenticate(request.headers.get("authorization"), scope)

    guard.__name__ = f"_{scope}"
    guard.__doc__ = f"The caller, if its token has the {scope} scope: {_SCOPES[scope]}."
    return guard


_admin = _scope("admin")
_reader = _scope("read")
_ingester = _scope("ingest")


def _registry(request: Request) -> CollectorRegistry:
    return request.app.state.registry


def _charts(request: Request) -> ChartSampler:
    return request.app.state.charts


def _checks(request: Request) -> dict[str, Callable[[], bool]]:
    return request.app.state.checks


StoreDep = Annotated[Store, Depends(_store)]
ReferencesDep = Annotated[ReferenceStore, Depends(_references)]
VerdictsDep = Annotated[VerdictStore, Depends(_verdicts)]
RolloutRunsDep = Annotated[RolloutRuns, Depends(_rollout_runs)]
GpuDep = Annotated[GpuStore, Depends(_gpu)]
RegistryDep = Annotated[CollectorRegistry, Depends(_registry)]
ChecksDep = Annotated[dict[str, Callable[[], bool]], Depends(_checks)]
DecisionsDep = Annotated[DecisionStore, Depends(_decisions)]
AdminDep = Annotated[Principal, Depends(_admin)]
ReaderDep = Annotated[Principal, Depends(_reader)]
IngestDep = Annotated[Principal, Depends(_ingester)]
ReadScope = Depends(_reader)
"""For `APIRouter(dependencies=[ReadScope])`: every route of the router needs the read scope."""
WebhooksDep = Annotated[WebhookStore, Depends(_webhooks)]
FleetDep = Annotated[FleetStore, Depends(_fleet)]
FleetSplitDep = Annotated[FleetSplit, Depends(_fleet_split)]
ChartsDep = Annotated[ChartSampler, Depends(_charts)]
