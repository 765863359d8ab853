"""Output schemas of the API (inputs are query parameters for now)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


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


class ChainedDecision(BaseModel):
    """A stored decision with its place in the hash chain."""

    model_config = ConfigDict(frozen=True)

    seq: int
    prev_hash: str
    hash: str = Field(description="sha256(prev_hash + canonical JSON of the decision)")
    decision: dict[str, Any] = Field(description="steward.decision.v1 record as stored")


class Evidence(BaseModel):
    """What the proposing processor judged, behind the decision."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["drift", "canary", "rollout", "loop", "none"]
    verdicts: list[dict[str, Any]] = Field(
        description="drift verdicts named by the action: window, rows, per-column stats")
    missing_verdicts: list[str] = Field(
        description="verdict ids (drift) or fields (canary) the store does not have")
    canary: dict[str, Any] | None = Field(
        description="a rollback's window, baseline and canary stats, ratio and threshold; "
        "for a rollout's action, the analysis run behind it")
    retrain_trigger_id: str | None = Field(
        None, description="loop: the retraining request a rollout's action answers")
    rollout_id: str | None = Field(None, description="loop, rollout: the rollout behind "
                                   "the action")
    runs: list[dict[str, Any]] = Field(
        default_factory=list, description="loop, rollout: every analysis run of the rollout "
        "up to the action's (steward.rollout.analysis.v1), all measurements included")


class ActionLineage(BaseModel):
    """Everything behind one action: event, decision (or denial), evidence."""

    model_config = ConfigDict(frozen=True)

    action_id: str
    proposal_id: str
    event: dict[str, Any] | None = Field(description="the action as emitted (null if denied)")
    denial: dict[str, Any] | None = Field(description="its steward.action.denied event")
    decision: ChainedDecision | None
    evidence: Evidence
    complete: bool = Field(description="event or denial, decision and all evidence found")


class DecisionsPage(BaseModel):
    model_config = ConfigDict(frozen=True)

    decisions: list[dict[str, Any]] = Field(description="steward.decision.v1 records")
    next_after: int = Field(description="Pass as `after` for the next page")
    has_more: bool


class ChainStatus(BaseModel):
    model_config = ConfigDict(frozen=True)

    ok: bool
    checked: int = Field(description="decisions verified, from seq 1")
    head_seq: int
    head_hash: str = Field(description="keep a copy elsewhere: a cut tail shows against it")
    broken_seq: int | None = None
    problem: Literal["gap", "link", "edited"] | None = None
    detail: str | None = None


class AuditQuery(BaseModel):
    model_config = ConfigDict(frozen=True)

    sql: str = Field(min_length=1, max_length=20_000,
                     description="one SELECT over decisions, events, drift_verdicts")


class AuditQueryResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    columns: list[str]
    rows: list[list[Any]]
    truncated: bool = Field(description="more rows matched than row_limit")
    row_limit: int
