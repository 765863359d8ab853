"""GPU partitions: each one's latest window, its use against its promise."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import GpuDep, ReadScope

router = APIRouter(tags=["gpu"], dependencies=[ReadScope])
Filter = Annotated[str | None, Query(max_length=128)]


@router.get("/gpu/partitions")
def list_partitions(
    gpu: GpuDep, site: Filter = None, node: Filter = None,
    gpu_uuid: Filter = None, team: Filter = None, model: Filter = None,
    since: Annotated[datetime | None, Query(description="window start >= since")] = None,
    until: Annotated[datetime | None, Query(description="window start < until")] = None,
) -> dict[str, Any]:
    """Every partition's latest usage window in the range: its share of the card, use,
    promise, and whether its values are device copies (time-slicing)."""
    filters = {"site": site, "node": node, "gpu_uuid": gpu_uuid, "team": team, "model": model}
    return {"partitions": gpu.partitions(since, until, filters)}
