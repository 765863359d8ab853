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

GPU usage windows and drift verdicts of the two versions join the samples when a
metric needs them (cost and partition health; drift share). They close later than
sample buckets (their windows are longer, and judged after), so once a version's
usage (or verdicts) has been seen, an interval also waits, by event time, until that
version's latest window reaches the interval's end; the wall clock still closes it
after one more interval, judged on what came. Every run is also returned as a
`RolloutAnalysis` record: every measurement is kept, the runs that led to nothing too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from processors.canary.judge import JudgeConfig, get
from processors.canary.measures import metric_data, overlap
from steward.schema import EventType, event_id, make_event
from steward.schema.drift import DriftVerdict
from steward.schema.rollout import (
    AnalysisRun,
    Judgement,
    Phase,
    RolloutAction,
    RolloutAnalysis,
    RolloutSpec,
    VersionSamples,
    VersionUsage,
)

SOURCE = "/steward/processors/rollout"
TERMINAL: frozenset[str] = frozenset({"promoted", "rolled_back", "aborted"})
RUN_TYPE = "steward.rollout.run"
USAGE_METRICS = frozenset({"cost_per_1k", "partition_unhealthy"})
__all__ = ["metric_data"]  # re-exported: the bench builds judge inputs with it


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
    usage: list[VersionUsage] = field(default_factory=list)
    verdicts: list[DriftVerdict] = field(default_factory=list)
    marks: dict[str, datetime] = field(default_factory=dict)
    """Per `kind|version` of usage or verdicts seen: the latest window end (see above)."""
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

    def add(self, x: VersionSamples | VersionUsage | DriftVerdict) -> bool:
        """Keep `x` if this rollout judges on it; whether it was kept."""
        spec = self.spec
        if x.version not in (spec.baseline_version, spec.canary_version) \
                or x.site not in spec.targets:
            return False
        if isinstance(x, VersionSamples):
            if x.start < self.anchor:
                return False
            self.samples.append(x)
            self.watermark = max(x.start, self.watermark or x.start)
            return True
        kind, end = ("usage", x.end) if isinstance(x, VersionUsage) else ("drift", x.window.end)
        if kind not in needs(spec) or end <= self.anchor:
            return False
        (self.usage if isinstance(x, VersionUsage) else self.verdicts).append(x)  # type: ignore[arg-type]
        key = f"{kind}|{x.version}"
        self.marks[key] = max(end, self.marks.get(key, end))
        return True

    def forget(self, before: datetime) -> None:
        """Drop what ends at or before `before` (samples: start before it)."""
        self.samples = [s for s in self.samples if s.start >= before]
        self.usage = [u for u in self.usage if u.end > before]
        self.verdicts = [v for v in self.verdicts if v.window.end > before]


def needs(spec: RolloutSpec) -> set[str]:
    """What besides samples the spec's metrics judge on: `usage`, `drift`."""
    names = {m.name for m in spec.metrics}
    return {k for k, wanted in (("usage", bool(names & USAGE_METRICS)),
                                ("drift", "drift_share" in names)) if wanted}


def active_sites(spec: RolloutSpec, step: int) -> list[str]:
    """The sites a step's canary runs at: the first n targets for a sites step, else all."""
    s = spec.steps[step]
    return list(spec.targets[:s.sites]) if s.sites is not None else list(spec.targets)


def judge_config(spec: RolloutSpec) -> JudgeConfig:
    return JudgeConfig(spec.metrics, spec.group_weights, spec.thresholds.pass_score,
                       spec.thresholds.marginal_score)


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

    def mine(x: VersionUsage | DriftVerdict, a: datetime, b: datetime) -> bool:
        return (x.version == spec.baseline_version or x.site in active) \
            and overlap(a, b, start, end) > 0

    usage = [u for u in r.usage if mine(u, u.start, u.end)]
    verdicts = [v for v in r.verdicts if mine(v, v.window.start, v.window.end)]
    judgement: Judgement = get(spec.judge)(
        judge_config(spec), metric_data(spec, base, can, start, end, usage, verdicts))
    return AnalysisRun(
        run_id=event_id(RUN_TYPE, spec.rollout_id, r.step, r.runs), rollout_id=spec.rollout_id,
        step=r.step, index=r.runs, start=start, end=end, sites=reporting,
        waiting=sorted(set(active) - set(reporting)), judgement=judgement)


def advance(r: Rollout, now: datetime | None = None) -> list[Any]:
    """Judge every closed interval in order until a proposal is made; each run's
    `RolloutAnalysis`, and after it the proposal (a CloudEvent) it led to, if any. `now`
    (wall clock, from tick) also closes quiet intervals."""
    out: list[Any] = []
    grace = timedelta(seconds=r.spec.grace_s)
    while r.phase in ("pending", "running"):
        start = r.anchor + r.next_interval * r.interval
        end = start + r.interval
        by_data = r.watermark is not None and r.watermark >= end + grace \
            and all(mark >= end for mark in r.marks.values())
        by_clock = now is not None and now >= end + grace + r.interval
        if not (by_data or by_clock):
            break
        run = analyse(r, start, end)
        r.next_interval += 1
        r.forget(end)
        if run is None:
            continue
        r.phase, r.runs = "running", r.runs + 1
        event = _decide(r, run)
        spec = r.spec
        out.append(RolloutAnalysis(
            rollout_id=spec.rollout_id, model=spec.model, baseline_version=spec.baseline_version,
            canary_version=spec.canary_version, phase=r.phase, run=run,
            proposal_id=event.get_id() if event is not None else None))
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
        r.forget(p.anchor)


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
