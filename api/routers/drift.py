"""Drift verdicts per (model, version, site) window, with filters and paging."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import VerdictsDep
from api.schemas import VerdictsPage
from api.verdicts import VerdictQuery

router = APIRouter(tags=["drift"])


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
