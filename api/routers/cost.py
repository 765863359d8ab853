"""GPU cost: allocated, used and idle dollars per model, version, team, site or tier."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from api.deps import GpuDep, ReadScope

router = APIRouter(tags=["cost"], dependencies=[ReadScope])
Group = Literal["model", "version", "team", "site", "tier"]


@router.get("/cost")
def cost(
    gpu: GpuDep,
    since: Annotated[datetime, Query(description="window start >= since")],
    until: Annotated[datetime, Query(description="window start < until")],
    group_by: Annotated[list[Group], Query(description="repeatable; default team")] = [],  # noqa: B006
) -> dict[str, Any]:
    """Cost of the GPU partitions in [since, until): per group allocated, used and idle
    dollars, efficiency (used / allocated), GPU-hours and, when grouped by model, dollars
    per 1,000 inferences; `__idle__` is card capacity no partition held."""
    return gpu.cost(group_by, since, until)
