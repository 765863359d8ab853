"""Governance records: the decision on every proposed action, and what a denial says.

A `Decision` is shaped like an OPA decision-log entry (`decision_id`, `path`, `input`,
`result`, the policy revision, `timestamp`, `trace_id`), plus what Steward needs to trace
it: the proposing event's id and type, the outcome, the reasons, and which engine
answered. Decisions travel on their own topic and are stored in a hash chain by the API
process, so an edit or a gap is detectable.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, ConfigDict, Field

from steward.schema.records import Frozen, Name

Engine = Literal["embedded", "opa"]


class Decision(Frozen):
    """One policy evaluation of one proposed action."""

    schema_: Literal["steward.decision.v1"] = Field("steward.decision.v1", alias="schema")
    decision_id: str
    """Deterministic: the same proposal under the same revision gets the same id."""
    path: str
    """The policy document evaluated, slash-separated as in OPA's Data API
    (e.g. `steward/gate/decision`)."""
    input: dict[str, Any]
    """The input as evaluated, with the configured fields masked."""
    masked: list[str] = Field(default_factory=list)
    """JSON pointers of the input fields replaced by "***" (OPA's `masked`)."""
    result: Any = None
    """The policy's result document; None when undefined or when the engine failed."""
    allowed: bool
    reasons: list[str] = Field(default_factory=list)
    """Why not (the policies' deny messages, or the engine error when it failed closed)."""
    revision: str
    """Hash of the rules bundle and its data document."""
    engine: Engine
    error: str | None = None
    """Engine error, timeout or unreachable server: the action was denied (fail closed)."""
    timestamp: AwareDatetime
    trace_id: str | None = None
    proposal_id: str
    """Id of the proposing CloudEvent."""
    proposal_type: str
    proposal_source: str
    model: Name | None = None
    version: Name | None = None
    elapsed_ms: float = 0.0

    model_config = ConfigDict(populate_by_name=True)


class ActionDenied(Frozen):
    """Data of `steward.action.denied`: a proposal the gate refused, and why."""

    schema_: Literal["steward.action.denied.v1"] = Field("steward.action.denied.v1",
                                                         alias="schema")
    proposal_id: str
    proposal_type: str
    proposal_source: str
    subject: str | None = None
    decision_id: str
    revision: str
    reasons: list[str]
    error: str | None = None
    proposal: dict[str, Any]
    """The proposed event's data, as proposed."""
