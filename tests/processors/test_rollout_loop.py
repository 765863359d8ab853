"""The closed loop in the rollout processor: an allowed retraining request and the version
registered for it start a rollout (through the gate), whose promotion carries the
registration's evidence and the lineage back to the drift verdicts."""

from __future__ import annotations

from datetime import timedelta

from processors.canary.autostart import RolloutTemplate, rollout_id
from processors.rollout import Rollouts, RolloutSettings
from steward import topics as T
from steward.schema import EventType, make_event
from steward.schema.drift import RetrainRequested, WindowRef
from steward.schema.governance import ActionDenied
from steward.schema.registered import ModelRegistered
from steward.schema.rollout import RolloutMessage
from steward.stream import Emit, Source
from tests.processors.test_rollout import T0, allow, closer, interval, steps, types

TEMPLATE = RolloutTemplate(
    targets=["eu-west-1"], steps=[{"traffic_pct": 10}, {"traffic_pct": 100}], interval_s=60,
    grace_s=10, team="risk", target={"region": "eu-west-1", "tier": "cloud"},
    estimated_usd=20, limits={"consecutive_successes": 2})
SETTINGS = RolloutSettings(templates={"fraud": TEMPLATE})


def retrain(trigger: str = "t1", version: str = "1.0"):
    """The gate's allowed retraining request for `version`, opened by two drifted windows."""
    windows = [WindowRef(site="factory-berlin", start="a", end="b", verdict_id=f"v{i}",
                         drifted_columns=["amount"]) for i in (1, 2)]
    data = RetrainRequested(model="fraud", version=version, trigger_id=trigger,
                            sites=["factory-berlin"], windows=windows,
                            drifted_columns=["amount"], method="calibrated", rule="2 of 3",
                            cooldown_s=3600)
    event = make_event(EventType.RETRAIN_REQUESTED, source="/t", subject="fraud/1.0",
                       data=data, key="fraud", time=T0 - timedelta(hours=1), facts=(trigger,))
    return allow([Emit(T.PROPOSALS, event)])[0]


def registered(trigger: str | None = "t1", version: str = "2.0") -> RolloutMessage:
    return RolloutMessage(registered=ModelRegistered(
        model="fraud", version=version, retrain_trigger_id=trigger,
        eval={"auc": 0.95, "accuracy": 0.93}, model_card=True,
        artifact={"format": "onnx"}, registered_at=T0))


def test_retrain_then_registration_proposes_a_rollout_start():
    _, out = steps(Rollouts(SETTINGS), [retrain(), registered()], T0)
    assert types(out) == [EventType.ROLLOUT_STARTED]
    data = out[0].event.get_data()
    spec = data["spec"]
    assert (spec["baseline_version"], spec["canary_version"]) == ("1.0", "2.0")
    assert data["rollout_id"] == spec["rollout_id"] == rollout_id("fraud", "2.0", "t1")
    assert data["retrain_trigger_id"] == "t1" and data["drift_verdict_ids"] == ["v1", "v2"]
    assert spec["evidence"]["eval"]["auc"] == 0.95 and spec["evidence"]["model_card"]
    assert data["target"]["region"] == "eu-west-1" and data["sites"] == ["eu-west-1"]


def test_either_order_and_only_when_paired_with_a_template():
    proc = Rollouts(SETTINGS)
    _, first = steps(proc, [registered(), retrain()], T0)
    _, second = steps(proc, [retrain(), registered()], T0)
    assert [e.event.get_id() for e in first] == [e.event.get_id() for e in second]
    assert steps(Rollouts(), [retrain(), registered()], T0)[1] == []
    assert steps(proc, [retrain(), registered(trigger="other")], T0)[1] == []
    assert steps(proc, [retrain(), registered(trigger=None)], T0)[1] == []
    assert steps(proc, [retrain(), registered(version="1.0")], T0)[1] == []
    _, twice = steps(proc, [retrain(), retrain(), registered(), registered()], T0)
    assert [e.event.get_id() for e in twice] == [e.event.get_id() for e in second]


def test_allowed_start_declares_the_rollout_and_promotion_carries_evidence_and_lineage():
    proc = Rollouts(SETTINGS)
    state, out = steps(proc, [retrain(), registered()], T0)
    state, out = steps(proc, [*allow(out), *interval(0), *interval(1), closer(1)], T0,
                           state)
    assert types(out) == [EventType.ROLLOUT_STEP_ADVANCED]
    state, out = steps(proc, [*allow(out), *interval(2), *interval(3), *interval(4),
                                  closer(4)], T0, state)
    assert types(out) == [EventType.MODEL_PROMOTED]
    data = out[0].event.get_data()
    ev = data["evidence"]
    assert ev["eval"] == {"auc": 0.95, "accuracy": 0.93} and ev["model_card"] is True
    assert ev["canary"]["verdict"] == "pass" and ev["cost"] == {"estimated_usd": 20}
    assert ev["counts"] == {"promotions_24h": 0}
    assert data["retrain_trigger_id"] == "t1" and data["drift_verdict_ids"] == ["v1", "v2"]
    assert data["target"] == {"region": "eu-west-1", "tier": "cloud"}
    assert data["artifact"] == {"format": "onnx"} and data["team"] == "risk"
    assert not state.loop.retrains and not state.loop.registered


def test_waiting_halves_are_held_for_replay_and_a_denial_forgets_them():
    proc = Rollouts(SETTINGS)
    state = proc.initial_state()
    state, _ = proc.step(state, retrain(), T0, Source("actions", 0, 5))
    assert proc.hold(state) == {"actions": 5}
    state, out = proc.step(state, registered(), T0, Source("rollouts", 0, 9))
    assert proc.hold(state) == {"actions": 5, "rollouts": 9}
    (emit,) = out
    denied = ActionDenied(
        proposal_id=emit.event.get_id(), proposal_type=EventType.ROLLOUT_STARTED,
        proposal_source="/steward/processors/rollout", subject="s", decision_id="d",
        revision="r", reasons=["no"], error=None, proposal=emit.event.get_data())
    denial = make_event(EventType.ACTION_DENIED, source="/g", subject="s", key="fraud",
                        time=T0, facts=("x",), data=denied)
    state, _ = proc.step(state, denial, T0, Source("actions", 0, 11))
    assert proc.hold(state) == {} and not state.rollouts

