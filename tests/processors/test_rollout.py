"""The rollout state machine, lists in and lists out: steps, rollback, pause, edge sites,
the gate's answers, and a restart that rebuilds the same phase with no new ids."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta

import numpy as np
from cloudevents.core.v1.event import CloudEvent

from processors.rollout import Rollouts
from processors.rollout_samples import RolloutSamples, SamplesSpec
from steward import topics as T
from steward.schema import InferenceRecord
from steward.schema.rollout import (
    RolloutCommand,
    RolloutMessage,
    RolloutSpec,
    VersionSamples,
)
from steward.stream import Emit, Source, run_steps

T0 = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
SPEC = RolloutSpec(
    rollout_id="r1", model="fraud", baseline_version="1.0", canary_version="2.0",
    targets=["eu-west-1"], steps=[{"traffic_pct": 10}, {"traffic_pct": 50}], interval_s=60,
    grace_s=10, limits={"failure_limit": 2, "consecutive_failures": 2,
                        "consecutive_successes": 2, "inconclusive_limit": 1},
    declared_at=T0)


def decl(spec: RolloutSpec = SPEC) -> RolloutMessage:
    return RolloutMessage(spec=spec)


def bucket(version: str, at: float, *, site: str = "eu-west-1", n: int = 100,
           scale: float = 1.0, acc: float = 0.9, seed: int = 0) -> VersionSamples:
    """One 10 s bucket at T0 + at seconds, drawn from a fixed seed."""
    rng = np.random.default_rng([seed, int(at), zlib.crc32(f"{version}|{site}".encode())])
    return VersionSamples(model="fraud", version=version, site=site,
                          start=T0 + timedelta(seconds=at), end=T0 + timedelta(seconds=at + 10),
                          records=n, inferences=n,
                          latency_ms=(rng.lognormal(3, 0.3, n) * scale).tolist(),
                          errors=int((rng.random(n) < 0.01).sum()), labelled=n,
                          correct=int((rng.random(n) < acc).sum()))


def interval(k: int, *, sites: tuple[str, ...] = ("eu-west-1",), **canary) -> list:
    """Interval k (60 s from T0 + 60k): six buckets per version per site."""
    out = []
    for site in sites:
        for b in range(6):
            at = 60 * k + 10 * b
            out += [bucket("1.0", at, site=site), bucket("2.0", at, site=site, **canary)]
    return out


def closer(k: int, site: str = "eu-west-1") -> VersionSamples:
    """A baseline bucket past interval k's end plus grace: closes it by event time."""
    return bucket("1.0", 60 * (k + 1) + 10, n=1, site=site)


def allow(emits: list[Emit]) -> list[CloudEvent]:
    """The gate's answer: each proposal allowed (same id and data, naming a decision)."""
    return [CloudEvent({**e.event.get_attributes(), "decisionid": "d-" + e.event.get_id(),
                        "policyrevision": "rev1"}, e.event.get_data()) for e in emits]


def steps(proc: Rollouts, records: list, now: datetime, state=None):
    """`run_steps` keeping only the proposals (every run's analysis record is checked in
    tests/processors/test_rollout_measures.py)."""
    state, out = run_steps(proc, records, now, state)
    return state, [e for e in out if e.topic is T.PROPOSALS]


def types(emits: list[Emit]) -> list[str]:
    return [e.event.get_type() for e in emits]


def test_healthy_canary_advances_and_is_promoted_through_the_gate():
    proc = Rollouts()
    state, out = steps(proc, [decl(), *interval(0), *interval(1), closer(1)], T0)
    assert types(out) == ["steward.rollout.step_advanced"]
    assert all(e.topic is T.PROPOSALS for e in out)
    data = out[0].event.get_data()
    assert (data["step"], data["next_step"], data["traffic_pct"]) == (0, 1, 50)
    assert data["run"]["judgement"]["verdict"] == "pass" and data["run"]["index"] == 1
    assert len(data["run"]["judgement"]["measurements"]) == 3
    assert out[0].event.get_extension("partitionkey") == "fraud"
    assert state.rollouts["r1"].phase == "awaiting"
    # intervals while the gate decides are not judged; the next step starts one interval
    # after the run that advanced it (120 s + 60 s = interval 3)
    state, out2 = steps(proc, [*interval(2), *allow(out), *interval(3), *interval(4),
                                   closer(4)], T0, state)
    r = state.rollouts["r1"]
    assert types(out2) == ["steward.model.promoted"]
    assert out2[0].event.get_data()["run"]["start"] == "2026-11-23T12:04:00Z"
    assert r.step == 1 and r.phase == "awaiting"
    state, _ = steps(proc, allow(out2), T0, state)
    assert state.rollouts["r1"].phase == "promoted" and proc.hold(state) == {}


def test_latency_regression_rolls_back_within_the_failure_limit():
    _, out = steps(Rollouts(), [decl(), *interval(0, scale=1.4), *interval(1, scale=1.4),
                                        *interval(2, scale=1.4), closer(2)], T0)
    assert types(out) == ["steward.model.rolled_back"]  # the 2nd failed run, not the 3rd
    data = out[0].event.get_data()
    assert data["run"]["index"] == 1 and data["phase"] == "rolled_back"
    lat = data["run"]["judgement"]["measurements"][0]
    assert lat["metric"] == "latency_ms" and lat["result"] == "high"
    assert data["evidence"]["rollout"]["consecutive_failures"] == 2
    assert data["sites"] == ["eu-west-1"]


def test_accuracy_drop_rolls_back():
    _, out = steps(Rollouts(), [decl(), *interval(0, acc=0.7), *interval(1, acc=0.7),
                                    closer(1)], T0)
    assert types(out) == ["steward.model.rolled_back"]
    results = {m["metric"]: m["result"]
               for m in out[0].event.get_data()["run"]["judgement"]["measurements"]}
    assert results == {"latency_ms": "pass", "error_rate": "pass", "accuracy": "low"}


def test_noisy_but_equal_canary_is_never_rolled_back():
    records = [decl()]
    for k in range(8):
        records += interval(k, seed=k)
    _, out = steps(Rollouts(), [*records, closer(7)], T0)
    assert types(out) == ["steward.rollout.step_advanced"]  # then waits for the gate


def test_too_little_data_pauses_as_inconclusive():
    _, out = steps(Rollouts(), [decl(), *interval(0, n=5), *interval(1, n=5), closer(1)],
                       T0)
    assert types(out) == ["steward.rollout.paused"]
    data = out[0].event.get_data()
    assert data["run"]["judgement"]["verdict"] == "inconclusive" and data["phase"] == "paused"


def test_denied_action_pauses_and_resume_goes_on():
    proc = Rollouts()
    state, out = steps(proc, [decl(), *interval(0), *interval(1), closer(1)], T0)
    denied = CloudEvent({"id": "x", "source": "/gate", "type": "steward.action.denied",
                         "specversion": "1.0"},
                        {"proposal_id": out[0].event.get_id(), "reasons": ["no rule"],
                         "proposal": out[0].event.get_data()})
    state, _ = steps(proc, [denied], T0, state)
    r = state.rollouts["r1"]
    assert r.phase == "paused" and r.reason == "denied by policy: no rule"
    resume = RolloutMessage(command=RolloutCommand(rollout_id="r1", model="fraud",
                                                   command="resume",
                                                   at=T0 + timedelta(seconds=170)))
    state, out = steps(proc, [resume, *interval(3), *interval(4), closer(4)], T0, state)
    assert types(out) == ["steward.rollout.step_advanced"]  # two fresh passes after 170 s
    assert [out[0].event.get_data()["run"][k] for k in ("index", "start")] == \
        [3, "2026-11-23T12:04:00Z"]  # run indices go on: ids stay unique in the step


def test_restart_mid_rollout_resumes_the_same_phase_with_no_new_ids():
    proc = Rollouts()
    early = [*interval(0), *interval(1), closer(1)]
    state, out = steps(proc, [decl(), *early], T0)
    late = [*interval(3), *interval(4, scale=1.5), *interval(5, scale=1.5), closer(5)]
    state, out2 = steps(proc, [*allow(out), *late], T0, state)
    assert types(out2) == ["steward.model.rolled_back"]
    sent = {e.event.get_id() for e in out + out2}
    # restart: a fresh instance replays the same records; each topic keeps its order, but
    # the rollouts, samples and actions topics interleave differently
    for replay in ([decl(), *early, *allow(out), *late], [*allow(out), decl(), *early, *late],
                   [*early, *late, decl(), *allow(out)], [*early, *allow(out), *late, decl()]):
        again, out3 = steps(Rollouts(), replay, T0)
        assert {e.event.get_id() for e in out3} <= sent
        r = again.rollouts["r1"]
        assert (r.phase, r.step) == ("awaiting", 1)
        assert r.pending.proposal_id == out2[0].event.get_id()


def test_hold_keeps_what_an_open_rollout_needs():
    proc = Rollouts()
    state = proc.initial_state()
    state, _ = proc.step(state, interval(0)[0], T0, Source("samples", 0, 3))
    state, _ = proc.step(state, decl(), T0, Source("rollouts", 0, 7))
    state, _ = proc.step(state, interval(0)[1], T0, Source("samples", 0, 4))
    assert proc.hold(state) == {"rollouts": 7, "samples": 3}  # claimed from before the decl


def test_edge_fleet_waits_on_an_offline_site_and_rollback_names_every_site():
    edge = SPEC.model_copy(update={"rollout_id": "e1", "tier": "edge",
                                   "targets": ["lyon", "berlin", "oslo"],
                                   "steps": [SPEC.steps[0].model_copy(
                                       update={"traffic_pct": None, "sites": 1}),
                                       SPEC.steps[0].model_copy(
                                       update={"traffic_pct": None, "sites": 3})]})
    proc = Rollouts()
    all3 = ("lyon", "berlin", "oslo")
    state, out = steps(proc, [decl(edge), *interval(0, sites=all3),
                                  *interval(1, sites=all3), closer(1, "lyon")], T0)
    assert types(out) == ["steward.rollout.step_advanced"]
    assert out[0].event.get_data()["sites"] == ["lyon", "berlin", "oslo"]
    assert out[0].event.get_data()["run"]["sites"] == ["lyon"]  # step 0: the first site
    # step 1 from interval 3: berlin is offline for two intervals -> waited on, no advance
    two = ("lyon", "oslo")
    state, out2 = steps(proc, [*allow(out), *interval(3, sites=two),
                                   *interval(4, sites=two), closer(4, "lyon")], T0, state)
    assert out2 == [] and state.rollouts["e1"].phase == "running"
    state, out3 = steps(proc, [*interval(5, sites=all3, scale=1.5),
                                   *interval(6, sites=all3, scale=1.5), closer(6, "lyon")],
                                  T0, state)
    assert types(out3) == ["steward.model.rolled_back"]
    data = out3[0].event.get_data()
    assert data["sites"] == ["lyon", "berlin", "oslo"] and data["run"]["waiting"] == []


def test_abort_proposes_a_rollback_to_every_site():
    cmd = RolloutMessage(command=RolloutCommand(rollout_id="r1", model="fraud",
                                                command="abort", at=T0, reason="by hand"))
    _, out = steps(Rollouts(), [decl(), cmd, cmd], T0)
    assert types(out) == ["steward.model.rolled_back"]
    assert out[0].event.get_data()["phase"] == "aborted"
    assert out[0].event.get_data()["reason"] == "aborted: by hand"


def test_rollout_samples_buckets_inference_records_per_version_and_site():
    def rec(version: str, at: float, **kw) -> InferenceRecord:
        return InferenceRecord(model="fraud", version=version, site="lyon", tier="edge",
                               ts=T0 + timedelta(seconds=at), latency_ms=10 + at, **kw)

    records = [rec("1.0", 1, label=1, prediction=1), rec("1.0", 2, error=True, sample_rate=0.5),
               rec("2.0", 3, label=1, prediction=0), rec("1.0", 16)]
    _, out = run_steps(RolloutSamples(SamplesSpec(bucket_s=10, grace_s=5)), records, T0)
    assert [e.record.version for e in out] == ["1.0", "2.0"] and out[0].key == "fraud"
    b = out[0].record
    assert (b.records, b.inferences, b.latency_ms, b.errors, b.labelled, b.correct) == \
        (2, 3.0, [11.0, 12.0], 1, 1, 1)
    assert out[1].record.correct == 0 and out[1].topic is T.ROLLOUT_SAMPLES
