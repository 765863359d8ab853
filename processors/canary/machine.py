"""One rollout's state machine: intervals of samples in, analysis runs and proposals out.

Phases: `pending` (declared, no run yet), `running` (a step under analysis), `awaiting`
(a proposal is with the governance gate), `paused` (inconclusive, or an action denied:
a human resumes or aborts), and the terminal `promoted`, `rolled_back`, `aborted`.
A proposal changes nothing by itself: the phase moves when the gate's allowed action
comes back on the actions topic (a denial pauses). Everything is decided in event
time: an interval is judged when the rollout's samples pass its end plus grace, and a
step's first interval starts one interval after the run that advanced it (the traffic
shift needs time to take effect), so a replay judges the same intervals, the same
way, and proposes the same ids whatever order the topics interleave in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from processors.canary.judge import JudgeConfig, MetricData, get
from steward.schema import EventType, event_id, make_event
from steward.schema.rollout import (
    AnalysisRun,
    Judgement,
    Phase,
    RolloutAction,
    RolloutSpec,
    VersionSamples,
)

SOURCE = "/steward/processors/rollout"
TERMINAL: frozenset[str] = frozenset({"promoted", "rolled_back", "aborted"})
RUN_TYPE = "steward.rollout.run"


@dataclass
class Pending:
    """A proposal with the gate, and what allowing it does."""

    proposal_id: str
    target: Phase
    next_step: int | None = None
    anchor: datetime | None = None


@dataclass
class Rollout:
    spec: RolloutSpec
    anchor: datetime
    """Start of the current step's first interval."""
    phase: Phase = "pending"
    step: int = 0
    next_interval: int = 0
    runs: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    inconclusive: int = 0
    passed_sites: set[str] = field(default_factory=set)
    samples: list[VersionSamples] = field(default_factory=list)
    watermark: datetime | None = None
    """Latest bucket start seen: an interval closes once a bucket starts past its end
    plus grace (a bucket ending at the end does not close it: its peers may follow)."""
    pending: Pending | None = None
    reason: str = ""
    offsets: dict[str, int] = field(default_factory=dict)
    proposals: list[str] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)
    """Evidence the processor knows and the rollout does not (e.g. the model's promotions
    in the last 24 h), merged into every proposal's."""

    @property
    def interval(self) -> timedelta:
        return timedelta(seconds=self.spec.interval_s)

    def touch(self, topic: str, offset: int) -> None:
        """Remember the lowest offset per topic this rollout needs replayed."""
        self.offsets[topic] = min(offset, self.offsets.get(topic, offset))

    def add(self, s: VersionSamples) -> None:
        if s.version in (self.spec.baseline_version, self.spec.canary_version) \
                and s.site in self.spec.targets and s.start >= self.anchor:
            self.samples.append(s)
            self.watermark = max(s.start, self.watermark or s.start)


def active_sites(spec: RolloutSpec, step: int) -> list[str]:
    """The sites a step's canary runs at: the first n targets for a sites step, else all."""
    s = spec.steps[step]
    return list(spec.targets[:s.sites]) if s.sites is not None else list(spec.targets)


def judge_config(spec: RolloutSpec) -> JudgeConfig:
    return JudgeConfig(spec.metrics, spec.group_weights, spec.thresholds.pass_score,
                       spec.thresholds.marginal_score)


def metric_data(spec: RolloutSpec, base: list[VersionSamples],
                can: list[VersionSamples]) -> dict[str, MetricData]:
    """Each metric's data for the judge from both versions' buckets."""
    def binary(ss: list[VersionSamples], ones: str, total: str) -> np.ndarray:
        k = sum(getattr(s, ones) for s in ss)
        n = sum(getattr(s, total) for s in ss)
        return np.concatenate([np.ones(k), np.zeros(n - k)])

    def cost(ss: list[VersionSamples], version: str) -> list[float]:
        price, inferences = spec.usd_per_hour.get(version), sum(s.inferences for s in ss)
        if price is None or inferences <= 0:
            return []
        return [price * spec.interval_s / 3600 / (inferences / 1000)]

    return {
        "latency_ms": MetricData("samples", [x for s in base for x in s.latency_ms],
                                 [x for s in can for x in s.latency_ms]),
        "error_rate": MetricData("binary", binary(base, "errors", "records"),
                                 binary(can, "errors", "records")),
        "accuracy": MetricData("binary", binary(base, "correct", "labelled"),
                               binary(can, "correct", "labelled")),
        "cost_per_1k": MetricData("point", cost(base, spec.baseline_version),
                                  cost(can, spec.canary_version),
                                  sum(s.records for s in base), sum(s.records for s in can)),
    }


def analyse(r: Rollout, start: datetime, end: datetime) -> AnalysisRun | None:
    """Judge one interval of the current step; None when no site of the step reported
    (every site offline is waited on, never judged on missing data)."""
    spec = r.spec
    active = active_sites(spec, r.step)
    inside = [s for s in r.samples if start <= s.start < end]
    can = [s for s in inside if s.version == spec.canary_version and s.site in active]
    base = [s for s in inside if s.version == spec.baseline_version]
    reporting = sorted({s.site for s in can if s.records > 0})
    if not reporting:
        return None
    judgement: Judgement = get(spec.judge)(judge_config(spec), metric_data(spec, base, can))
    return AnalysisRun(
        run_id=event_id(RUN_TYPE, spec.rollout_id, r.step, r.runs), rollout_id=spec.rollout_id,
        step=r.step, index=r.runs, start=start, end=end, sites=reporting,
        waiting=sorted(set(active) - set(reporting)), judgement=judgement)


def advance(r: Rollout, now: datetime | None = None) -> list[Any]:
    """Judge every closed interval in order until a proposal is made; the proposals
    (CloudEvents) made. `now` (wall clock, from tick) also closes quiet intervals."""
    out: list[Any] = []
    grace = timedelta(seconds=r.spec.grace_s)
    while r.phase in ("pending", "running"):
        start = r.anchor + r.next_interval * r.interval
        end = start + r.interval
        by_data = r.watermark is not None and r.watermark >= end + grace
        by_clock = now is not None and now >= end + grace + r.interval
        if not (by_data or by_clock):
            break
        run = analyse(r, start, end)
        r.next_interval += 1
        r.samples = [s for s in r.samples if s.start >= end]
        if run is None:
            continue
        r.phase, r.runs = "running", r.runs + 1
        event = _decide(r, run)
        if event is not None:
            out.append(event)
    return out


def _decide(r: Rollout, run: AnalysisRun) -> Any:
    """Count the run against the limits; the proposal it leads to, if any."""
    lim, verdict = r.spec.limits, run.judgement.verdict
    if verdict == "pass":
        r.consecutive_successes += 1
        r.consecutive_failures = 0
        r.passed_sites.update(run.sites)
        whole = r.passed_sites >= set(active_sites(r.spec, r.step))
        if r.consecutive_successes >= lim.consecutive_successes and whole:
            if r.step + 1 < len(r.spec.steps):
                return propose(r, EventType.ROLLOUT_STEP_ADVANCED, "running", run,
                               f"step {r.step} passed {r.consecutive_successes} runs in a row",
                               next_step=r.step + 1, anchor=run.end + r.interval)
            return propose(r, EventType.MODEL_PROMOTED, "promoted", run,
                           f"last step passed {r.consecutive_successes} runs in a row")
        return None
    r.consecutive_successes = 0
    if verdict == "fail":
        r.failures += 1
        r.consecutive_failures += 1
        if r.failures > lim.failure_limit or r.consecutive_failures >= lim.consecutive_failures:
            return propose(r, EventType.MODEL_ROLLED_BACK, "rolled_back", run,
                           f"{r.failures} failed runs ({r.consecutive_failures} in a row): "
                           f"{run.judgement.reason}")
        return None
    r.inconclusive += 1
    if r.inconclusive > lim.inconclusive_limit:
        return propose(r, EventType.ROLLOUT_PAUSED, "paused", run,
                       f"{r.inconclusive} {verdict} runs: {run.judgement.reason}")
    return None


def propose(r: Rollout, event_type: str, target: Phase, run: AnalysisRun | None, reason: str,
            *, next_step: int | None = None, anchor: datetime | None = None,
            time: datetime | None = None) -> Any:
    """The proposal event; the rollout waits for the gate's answer."""
    spec = r.spec
    rollback = target in ("rolled_back", "aborted")
    sites = list(spec.targets) if rollback else active_sites(
        spec, next_step if next_step is not None else r.step)
    evidence: dict[str, Any] = {**spec.evidence, **r.context, "rollout": {
        "step": r.step, "steps": len(spec.steps), "failures": r.failures,
        "consecutive_failures": r.consecutive_failures, "inconclusive": r.inconclusive}}
    if run is not None:
        j = run.judgement
        evidence["rollout"].update(run_id=run.run_id, verdict=j.verdict, score=j.score)
        evidence["canary"] = {"verdict": j.verdict, "score": j.score, "run_id": run.run_id}
        evidence["metrics"] = {m.metric: {"result": m.result, "effect": m.effect}
                               for m in j.measurements}
    step = spec.steps[next_step] if next_step is not None else None
    data = RolloutAction(
        rollout_id=spec.rollout_id, model=spec.model, baseline_version=spec.baseline_version,
        canary_version=spec.canary_version, version=spec.canary_version, phase=target,
        step=r.step, next_step=next_step, traffic_pct=step.traffic_pct if step else None,
        sites=sites, reason=reason, run=run, team=spec.team, evidence=evidence,
        target=spec.target, artifact=spec.artifact, retrain_trigger_id=spec.retrain_trigger_id,
        drift_verdict_ids=spec.drift_verdict_ids)
    facts = (spec.rollout_id, r.step, run.index) if run is not None else (spec.rollout_id,
                                                                          "abort")
    event = make_event(event_type, source=SOURCE, subject=f"{spec.model}/{spec.rollout_id}",
                       data=data, key=spec.model, time=run.end if run else time or r.anchor,
                       facts=facts)
    r.phase, r.reason = "awaiting", reason
    r.pending = Pending(event.get_id(), target, next_step, anchor)
    r.proposals.append(event.get_id())
    return event


def settle(r: Rollout, allowed: bool, reasons: str) -> None:
    """The gate answered the pending proposal."""
    p = r.pending
    if p is None:
        return
    r.pending = None
    if not allowed:
        r.phase, r.reason = "paused", f"denied by policy: {reasons}"
        return
    r.phase = p.target
    if p.next_step is not None and p.anchor is not None:
        r.step, r.anchor, r.next_interval, r.runs = p.next_step, p.anchor, 0, 0
        reset(r)
        r.passed_sites.clear()
        r.samples = [s for s in r.samples if s.start >= p.anchor]


def reset(r: Rollout) -> None:
    r.failures = r.consecutive_failures = r.consecutive_successes = r.inconclusive = 0


def resume(r: Rollout, at: datetime) -> None:
    """A human resumes a paused rollout: counters of the step start over from the next
    interval boundary after `at`."""
    if r.phase != "paused":
        return
    r.phase, r.reason = "running", "resumed"
    reset(r)
    elapsed = (at - r.anchor) / r.interval
    r.next_interval = max(r.next_interval, int(np.ceil(elapsed)))
