"""The governance gate: every proposed action is decided by policy before it is emitted.

Processors propose (a CloudEvent on the proposals topic); the gate builds the policy input
from the proposal, evaluates `data.steward.gate.decision`, and returns three things: the
decision record (always, allowed or not, engine failure included), and either the action
itself (same id and data, plus the `decisionid` and `policyrevision` extension
attributes, so every emitted action names the decision that let it out) or a
`steward.action.denied` event with the reasons.

When the engine fails (error, timeout, OPA unreachable) the gate fails closed, except for
the action types configured to fail open: a rollback is the safe move, and blocking it
because the policy server is down would make an outage worse. Either way the failure is
a decision on the log.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cloudevents.core.v1.event import CloudEvent

from steward.governance.engine import Evaluation, PolicyEngine
from steward.schema import EventType, event_id, make_event
from steward.schema.governance import ActionDenied, Decision

PATH = "steward/gate/decision"
SOURCE = "/steward/governance/gate"
FAIL_OPEN = frozenset({EventType.MODEL_ROLLED_BACK})
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")

Mask = Callable[[dict[str, Any], list[str]], tuple[dict[str, Any], list[str]]]


@dataclass(frozen=True)
class Outcome:
    """What the gate decided for one proposal, and what goes out because of it."""

    decision: Decision
    event: CloudEvent
    """The action as proposed (allowed), or its `steward.action.denied` event."""

    @property
    def allowed(self) -> bool:
        return self.decision.allowed


def policy_input(proposal: CloudEvent) -> dict[str, Any]:
    """The policy input of a proposal: the action (type, identity, targets), the evidence
    it carries, and its whole data under `data` for policies that need more."""
    data = proposal.get_data() or {}
    data = data if isinstance(data, dict) else {"value": data}
    attrs = proposal.get_attributes()
    sites = data.get("sites") or ([data["site"]] if data.get("site") else [])
    action = {"type": attrs["type"], "id": attrs["id"], "source": attrs["source"],
              "subject": attrs.get("subject"), "model": data.get("model"),
              "version": data.get("version") or data.get("canary_version"),
              "team": data.get("team"), "sites": sites}
    for extra in ("target", "artifact", "baseline_version", "canary_version"):
        if extra in data:
            action[extra] = data[extra]
    return {"action": {k: v for k, v in action.items() if v is not None},
            "evidence": data.get("evidence", {}), "data": data}


def verdict_of(ev: Evaluation) -> tuple[bool, list[str], str | None]:
    """(allowed, reasons, error) from an evaluation; an undefined or malformed result is
    an error, never an allow."""
    if ev.error is not None:
        return False, [f"policy engine failed: {ev.error}"], ev.error
    result = ev.result
    if not isinstance(result, dict) or not isinstance(result.get("allow"), bool):
        why = "undefined" if result is None else f"malformed result {str(result)[:200]}"
        return False, [f"policy decision {why}"], f"decision {why}"
    deny = result.get("deny") or []
    return result["allow"], sorted(str(d) for d in deny), None


@dataclass
class Gate:
    """Decides proposals with `engine`; `mask` hides configured input fields in the log."""

    engine: PolicyEngine
    mask: Mask
    masked_fields: list[str] = field(default_factory=list)
    fail_open: frozenset[str] = FAIL_OPEN
    path: str = PATH
    facts: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    """Adds what the proposer could not know (e.g. the team's spend) to the input."""

    def decide(self, proposal: CloudEvent, now: datetime) -> Outcome:
        attrs = proposal.get_attributes()
        full = policy_input(proposal)
        if self.facts is not None:
            full = self.facts(full)
        ev = self.engine.evaluate(self.path, full)
        allowed, reasons, error = verdict_of(ev)
        if error is not None and attrs["type"] in self.fail_open:
            allowed = True
            reasons = [*reasons, f"{attrs['type']} fails open: allowed without a decision"]
        logged, masked = self.mask(full, self.masked_fields)
        action = full["action"]
        decision = Decision(
            decision_id=event_id("steward.decision", attrs["id"], ev.revision), path=self.path,
            input=logged, masked=masked, result=ev.result, allowed=allowed, reasons=reasons,
            revision=ev.revision, engine=ev.engine, error=error, timestamp=now,
            trace_id=_trace_id(attrs.get("traceparent")), proposal_id=attrs["id"],
            proposal_type=attrs["type"], proposal_source=attrs["source"],
            model=action.get("model"), version=action.get("version"),
            elapsed_ms=ev.elapsed_ms)
        event = _allowed(proposal, decision) if allowed else _denied(proposal, decision, full)
        return Outcome(decision, event)


def _allowed(proposal: CloudEvent, decision: Decision) -> CloudEvent:
    """The proposal as emitted: same id and data, naming its decision."""
    attrs = {**proposal.get_attributes(), "decisionid": decision.decision_id,
             "policyrevision": decision.revision}
    return CloudEvent(attrs, proposal.get_data())


def _denied(proposal: CloudEvent, decision: Decision, full: dict[str, Any]) -> CloudEvent:
    attrs = proposal.get_attributes()
    data = ActionDenied(
        proposal_id=attrs["id"], proposal_type=attrs["type"], proposal_source=attrs["source"],
        subject=attrs.get("subject"), decision_id=decision.decision_id,
        revision=decision.revision, reasons=decision.reasons, error=decision.error,
        proposal=full["data"])
    return make_event(EventType.ACTION_DENIED, source=SOURCE,
                      subject=attrs.get("subject") or attrs["type"], data=data,
                      key=attrs.get("partitionkey") or full["action"].get("model") or "",
                      time=decision.timestamp, facts=(attrs["id"], decision.revision))


def _trace_id(traceparent: Any) -> str | None:
    """The trace id of a W3C `traceparent` (CloudEvents' distributed tracing extension)."""
    match = _TRACEPARENT.match(traceparent) if isinstance(traceparent, str) else None
    return match.group(1) if match else None
