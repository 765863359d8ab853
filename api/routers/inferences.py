"""Stored inference records: the telemetry behind every verdict, with filters and paging."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import ReadScope, StoreDep
from api.schemas import InferencesPage
from api.store import InferenceQuery

router = APIRouter(tags=["telemetry"], dependencies=[ReadScope])


@router.get("/inferences", response_model=InferencesPage)
def list_inferences(
    store: StoreDep,
    model: Annotated[str | None, Query(max_length=128)] = None,
    version: Annotated[str | None, Query(max_length=128)] = None,
    site: Annotated[str | None, Query(max_length=128)] = None,
    tier: Annotated[str | None, Query(pattern="^(edge|cloud)$")] = None,
    node: Annotated[str | None, Query(max_length=128)] = None,
    since: Annotated[datetime | None, Query(description="record time >= since")] = None,
    until: Annotated[datetime | None, Query(description="record time < until")] = None,
    after: Annotated[int, Query(ge=0, description="cursor from `next_after`")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> InferencesPage:
    """Records in arrival order; each stored once however often it was delivered."""
    rows = store.query_inferences(InferenceQuery(model=model, version=version, site=site,
                                                 tier=tier, node=node, since=since, until=until,
                                                 after=after, limit=limit))
    return InferencesPage(records=[r for _, r in rows], next_after=rows[-1][0] if rows else after,
                          has_more=len(rows) == limit)
