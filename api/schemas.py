"""Output schemas of the API (inputs are query parameters for now)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Health(BaseModel):
    status: str = Field(description="'ok' when the check passed")
    checks: dict[str, bool] = Field(default_factory=dict)


class EventsPage(BaseModel):
    events: list[dict[str, Any]] = Field(description="CloudEvents in their JSON form")
    next_after: int | None = Field(
        description="Pass as `after` to get the next page; null when this page is the last"
    )
