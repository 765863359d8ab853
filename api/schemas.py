"""Output schemas of the API (inputs are query parameters for now)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class Health(BaseModel):
    status: str = Field(description="'ok' when the check passed")
    checks: dict[str, bool] = Field(default_factory=dict)


class EventsPage(BaseModel):
    events: list[dict[str, Any]] = Field(description="CloudEvents in their JSON form")
    next_after: int = Field(
        description="Pass as `after` for the next page, or later to tail new events"
    )
    has_more: bool = Field(description="True when more events match right now")


class InferencesPage(BaseModel):
    records: list[dict[str, Any]] = Field(description="Inference records as ingested")
    next_after: int = Field(description="Pass as `after` for the next page")
    has_more: bool


class ReferenceSummary(BaseModel):
    model: str
    version: str
    columns: dict[str, Literal["numerical", "categorical"]]
    prediction: str | None
    rows: int
    source: str = Field(description="'upload' or 'capture'")
    created_at: datetime


class ReferenceOut(ReferenceSummary):
    data: list[dict[str, Any]] = Field(description="the rows; null where a value is missing")


class VerdictsPage(BaseModel):
    verdicts: list[dict[str, Any]] = Field(description="steward.drift.verdict.v1 records")
    next_after: int = Field(description="Pass as `after` for the next page")
    has_more: bool
