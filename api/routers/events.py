"""Stored events, as CloudEvents JSON, with filters and keyset paging."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import ReadScope, StoreDep
from api.schemas import EventsPage
from api.store import EventQuery

router = APIRouter(tags=["events"], dependencies=[ReadScope])


@router.get("/events", response_model=EventsPage)
def list_events(
    store: StoreDep,
    type: Annotated[str | None, Query(max_length=200, description="CloudEvent type")] = None,
    source: Annotated[str | None, Query(max_length=500)] = None,
    subject: Annotated[str | None, Query(max_length=500)] = None,
    model: Annotated[str | None, Query(max_length=128)] = None,
    site: Annotated[str | None, Query(max_length=128)] = None,
    since: Annotated[datetime | None, Query(description="event time >= since")] = None,
    until: Annotated[datetime | None, Query(description="event time < until")] = None,
    after: Annotated[int, Query(ge=0, description="cursor from `next_after`")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EventsPage:
    """Events oldest first; follow `next_after` to page (or to tail)."""
    rows = store.query_events(EventQuery(type=type, source=source, subject=subject, model=model,
                                         site=site, since=since, until=until, after=after,
                                         limit=limit))
    return EventsPage(events=[event for _, event in rows],
                      next_after=rows[-1][0] if rows else after, has_more=len(rows) == limit)
