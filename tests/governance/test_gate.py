"""The gate's own logic: input building, allow / deny / fail closed / fail open, the
decision record and the events that go out. The engine here answers from a script (it is
the engine interface, not a server); the shipped policies run in test_gate_policies.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from processors.governance_gate import GovernanceGate
from steward import topics as T
from steward.governance.engine import Evaluation
from steward.governance.gate import Gate, policy_input
from steward.schema import EventType, event_id, make_event
from steward.schema.drift import RetrainRequested, WindowRef
from steward.stream import run_steps

T0 = datetime(2026, 11, 23, 12, tzinfo=UTC)


@dataclass
class Scripted:
    """Answers every evaluation with `result` (or `error`), recording the inputs."""

    result: Any = None
    error: str | None = None
    name: str = "embedded"
    revision: str = "rev-1"
    seen: list[dict[str, Any]] = field(default_factory=list)

    def evaluate(self, path: str, input: dict[str, Any]) -> Evaluation:
        self.seen.append(input)
        return Evaluation(path, self.result, self.revision, "embedded", 0.5, self.error)


def no_mask(doc: dict[str, Any], pointers: list[str]) -> tuple[dict[str, Any], list[str]]:
    return doc, []


def retrain(**extra: Any):
    data = RetrainRequested(
        model="fraud", version="1.4.0", trigger_id="t1", sites=["berlin"],
        windows=[WindowRef(site="berlin", start="s", end="e", verdict_id="v1",
                           drifted_columns=["amount"])],
        drifted_columns=["amount"], method="calibrated", rule="3 of 5", cooldown_s=60)
    event = make_event(EventType.RETRAIN_REQUESTED, source="/steward/processors/retrain-trigger",
                       subject="fraud/1.4.0", data=data, key="fraud", time=T0, facts=("x",))
    for k, v in extra.items():
        event = type(event)({**event.get_attributes(), k: v}, event.get_data())
    return event


def test_the_input_names_the_action_and_keeps_its_data():
    doc = policy_input(retrain())
    assert doc["action"] == {"type": "steward.retrain.requested", "id": retrain().get_id(),
                             "source": "/steward/processors/retrain-trigger",
                             "subject": "fraud/1.4.0", "model": "fraud", "version": "1.4.0",
                             "sites": ["berlin"]}
    assert doc["evidence"] == {} and doc["data"]["drifted_columns"] == ["amount"]


def test_an_allowed_action_goes_out_as_proposed_naming_its_decision():
    engine = Scripted(result={"allow": True, "deny": [], "rules": ["quota"]})
    proposal = retrain(traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    _, emits = run_steps(GovernanceGate(Gate(engine, no_mask)), [proposal], T0)
    decision, action = emits
    assert (decision.topic, action.topic) == (T.DECISIONS, T.ACTIONS)
    d = decision.record
    assert d.allowed and d.reasons == [] and d.error is None and d.revision == "rev-1"
    assert d.decision_id == event_id("steward.decision", proposal.get_id(), "rev-1")
    assert (d.proposal_id, d.proposal_type, d.model, d.version) == (
        proposal.get_id(), "steward.retrain.requested", "fraud", "1.4.0")
    assert d.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736" and d.path == "steward/gate/decision"
    out = action.event
    assert out.get_id() == proposal.get_id() and out.get_data() == proposal.get_data()
    assert out.get_attributes()["decisionid"] == d.decision_id
    assert out.get_attributes()["policyrevision"] == "rev-1"


def test_a_denied_action_becomes_a_denial_with_the_reasons():
    engine = Scripted(result={"allow": False, "deny": ["quota: 3 retrains today", "budget"]})
    _, emits = run_steps(GovernanceGate(Gate(engine, no_mask)), [retrain()], T0)
    decision, denial = emits
    assert not decision.record.allowed
    assert decision.record.reasons == ["budget", "quota: 3 retrains today"]
    attrs = denial.event.get_attributes()
    assert attrs["type"] == "steward.action.denied" and attrs["subject"] == "fraud/1.4.0"
    data = denial.event.get_data()
    assert data["reasons"] == ["budget", "quota: 3 retrains today"]
    assert data["proposal_id"] == retrain().get_id()
    assert data["decision_id"] == decision.record.decision_id


def test_engine_failures_fail_closed_and_are_logged_decisions():
    for engine in (Scripted(error="opa unreachable: connection refused"),
                   Scripted(result=None), Scripted(result={"allow": "yes"})):
        outcome = Gate(engine, no_mask).decide(retrain(), T0)
        assert not outcome.allowed and outcome.decision.error is not None
        assert outcome.event.get_attributes()["type"] == "steward.action.denied"
    down = Gate(Scripted(error="timeout"), no_mask).decide(retrain(), T0)
    assert down.decision.reasons == ["policy engine failed: timeout"]


def test_a_rollback_fails_open_but_says_so():
    rollback = retrain(type=EventType.MODEL_ROLLED_BACK)
    outcome = Gate(Scripted(error="timeout"), no_mask).decide(rollback, T0)
    assert outcome.allowed and outcome.event.get_id() == rollback.get_id()
    assert outcome.decision.error == "timeout"
    assert outcome.decision.reasons[-1].endswith("fails open: allowed without a decision")


def test_masked_fields_are_hidden_in_the_log_not_from_the_policy():
    def mask(doc, pointers):
        return {**doc, "data": {**doc["data"], "trigger_id": "***"}}, ["/data/trigger_id"]

    engine = Scripted(result={"allow": True, "deny": []})
    outcome = Gate(engine, mask, ["/data/trigger_id"]).decide(retrain(), T0)
    assert engine.seen[0]["data"]["trigger_id"] == "t1"
    assert outcome.decision.input["data"]["trigger_id"] == "***"
    assert outcome.decision.masked == ["/data/trigger_id"]
