"""Drift verdicts per (model, version, site) window, with filters and paging."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse

from api.deps import ReadScope, ReferencesDep, StoreDep, VerdictsDep
from api.drift_report import render
from api.schemas import VerdictsPage
from api.verdicts import VerdictQuery

router = APIRouter(tags=["drift"], dependencies=[ReadScope])


@router.get("/drift", response_model=VerdictsPage)
def list_verdicts(
    verdicts: VerdictsDep,
    model: Annotated[str | None, Query(max_length=128)] = None,
    version: Annotated[str | None, Query(max_length=128)] = None,
    site: Annotated[str | None, Query(max_length=128)] = None,
    drift: Annotated[bool | None, Query(description="only drifted (true) or clean (false)")] =
    None,
    since: Annotated[datetime | None, Query(description="window start >= since")] = None,
    until: Annotated[datetime | None, Query(description="window start < until")] = None,
    after: Annotated[int, Query(ge=0, description="cursor from `next_after`")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> VerdictsPage:
    """Verdicts in arrival order: each with its tests, thresholds, scores and findings."""
    rows = verdicts.query(VerdictQuery(model=model, version=version, site=site, drift=drift,
                                       since=since, until=until, after=after, limit=limit))
    return VerdictsPage(verdicts=[v for _, v in rows], next_after=rows[-1][0] if rows else after,
                        has_more=len(rows) == limit)


@router.get("/drift/{verdict_id}/report", response_class=HTMLResponse,
            responses={404: {"description": "no such verdict, reference or window records"}})
def drift_report(verdicts: VerdictsDep, references: ReferencesDep,
                 store: StoreDep,
                 verdict_id: Annotated[str, Path(max_length=128)]) -> HTMLResponse:
    """Evidently's full HTML report for the stored window behind one verdict."""
    return HTMLResponse(render(verdict_id, verdicts, references, store))
