"""The fleet: which version runs where (GET /fleet), edge versus cloud (GET /fleet/split)
and what edge-first saved against cloud-only (GET /fleet/savings)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from api.deps import FleetDep, FleetSplitDep, ReadScope
from api.fleet import FleetQuery, summary
from api.fleet_split import FleetSplit

router = APIRouter(tags=["fleet"], dependencies=[ReadScope])
NameQ = Annotated[str | None, Query(max_length=128)]
Since = Annotated[datetime | None, Query(description="record time >= since (default: "
                                                     "`until` - the configured period)")]
Until = Annotated[datetime | None, Query(description="record time < until (default: now)")]


@router.get("/fleet")
def fleet(
    fleet: FleetDep,
    model: NameQ = None,
    site: NameQ = None,
    tier: Annotated[Literal["edge", "cloud"] | None, Query()] = None,
    state: Annotated[Literal["online", "stale", "offline"] | None, Query()] = None,
) -> dict[str, Any]:
    """Every node's latest snapshot (versions, state, hardware, spool backlog, expected
    versions, straggler), and per model the nodes per state and the offline share."""
    nodes = fleet.nodes(FleetQuery(model=model, site=site, tier=tier, state=state))
    return {"nodes": nodes, "summary": summary(nodes)}


@router.get("/fleet/split")
def split(split: FleetSplitDep, model: NameQ = None,
          since: Since = None, until: Until = None) -> dict[str, Any]:
    """Per model and tier: requests, share, error rate, latency p50/p95/p99; spillover."""
    return split.split(model, *_period(split, since, until))


@router.get("/fleet/savings")
def savings(split: FleetSplitDep, model: NameQ = None,
            since: Since = None, until: Until = None) -> dict[str, Any]:
    """Per model: priced cost of the period, the cloud-only counterfactual, savings in
    dollars and percent, with the assumptions."""
    return split.savings(model, *_period(split, since, until))


def _period(split: FleetSplit, since: datetime | None,
            until: datetime | None) -> tuple[datetime, datetime]:
    until = until or split.clock()
    return since or until - timedelta(seconds=split.settings.period_s), until
