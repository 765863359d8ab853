"""Backtesting a candidate rule set against the decisions already made.

Before a rules change ships, the question is "what would it have done differently?".
The decision log keeps every input as evaluated, so the candidate engine re-evaluates
each one and the report lists the flips (allowed -> denied and back) with the new
reasons. Nothing is emitted: this reads decisions and calls an engine, no more.

Two limits the report states rather than hides: inputs were logged *masked* (fields
replaced by "***"), so a rule reading a masked field sees "***", and the count of such
evaluations is in the report with each flip marked; and a candidate that fails on an
input is listed as an error, never as a flip (the gate would fail closed or open, which
says nothing about the rules).
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

from steward.governance.engine import PolicyEngine
from steward.governance.gate import verdict_of as gate_verdict  # the gate's own reading
from steward.schema.governance import Decision


class Flip(BaseModel):
    """One decision the candidate rules would have decided the other way."""

    model_config = ConfigDict(frozen=True)

    decision_id: str
    proposal_id: str
    proposal_type: str
    model: str | None
    was_allowed: bool
    now_allowed: bool
    reasons_before: list[str]
    reasons_now: list[str]
    masked: list[str]
    """Input fields that were masked in the log (the candidate saw "***" there)."""


class Failure(BaseModel):
    model_config = ConfigDict(frozen=True)

    decision_id: str
    error: str


class BacktestReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    candidate_revision: str
    evaluated: int
    evaluated_masked: int
    """Evaluations whose logged input had masked fields."""
    unchanged: int
    to_denied: list[Flip]
    to_allowed: list[Flip]
    errors: list[Failure]
    revisions_seen: list[str]
    """The revisions the stored decisions were made under."""

    @property
    def flips(self) -> list[Flip]:
        return [*self.to_denied, *self.to_allowed]


def backtest(decisions: Iterable[Decision], engine: PolicyEngine) -> BacktestReport:
    """Re-evaluate each decision's stored input at its own path with `engine`."""
    evaluated = masked = unchanged = 0
    to_denied: list[Flip] = []
    to_allowed: list[Flip] = []
    errors: list[Failure] = []
    revisions: dict[str, None] = {}
    for d in decisions:
        revisions[d.revision] = None
        evaluated += 1
        masked += bool(d.masked)
        ev = engine.evaluate(d.path, d.input)
        allowed, reasons, error = gate_verdict(ev)
        if error is not None:
            errors.append(Failure(decision_id=d.decision_id, error=error))
            continue
        if allowed == d.allowed:
            unchanged += 1
            continue
        flip = Flip(decision_id=d.decision_id, proposal_id=d.proposal_id,
                    proposal_type=d.proposal_type, model=d.model, was_allowed=d.allowed,
                    now_allowed=allowed, reasons_before=d.reasons, reasons_now=reasons,
                    masked=d.masked)
        (to_allowed if allowed else to_denied).append(flip)
    return BacktestReport(candidate_revision=engine.revision, evaluated=evaluated,
                          evaluated_masked=masked, unchanged=unchanged, to_denied=to_denied,
                          to_allowed=to_allowed, errors=errors, revisions_seen=list(revisions))
