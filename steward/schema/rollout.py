"""Progressive rollouts: the declaration, the per-interval samples they are judged on, and
the analysis results their actions carry.

A rollout is declared once (API, CLI or a record on the rollouts topic, keyed by model)
and then driven by telemetry: every analysis interval of a step, the judge compares the
canary with the baseline metric by metric (Kayenta style) and the rollout processor
proposes the next move. Commands (`resume`, `abort`) travel on the same topic so that
one partition sees everything that changes a rollout, in order.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, model_validator

from steward.schema.records import Frozen, Name
from steward.schema.registered import ModelRegistered

Direction = Literal["increase", "decrease", "either"]
"""Which change of the canary is bad: `increase` for latency, `decrease` for accuracy."""
MetricName = Literal["latency_ms", "error_rate", "accuracy", "cost_per_1k",
                     "partition_unhealthy", "drift_share"]
"""`cost_per_1k`: measured GPU cost (declared price without usage) per 1,000 inferences;
`partition_unhealthy`: share of the version's GPU partition time starved or on an
oversubscribed card; `drift_share`: share of drifted columns in its drift verdicts."""
Result = Literal["pass", "high", "low", "nodata"]
Verdict = Literal["pass", "marginal", "fail", "inconclusive"]


class RolloutMetric(Frozen):
    """One metric the judge compares, with how much change is tolerated."""

    name: MetricName
    group: str = ""
    """Scoring group (default: the metric's name); groups are weighted, not metrics."""
    direction: Direction = "increase"
    critical: bool = False
    """A failed critical metric fails the whole run, whatever the score."""
    tolerance: Annotated[float, Field(ge=0)] = 0.1
    """Effect size tolerated: |canary - baseline| / baseline of the medians (means for
    rates and for cost); for the shares `partition_unhealthy` and `drift_share` the
    difference canary - baseline (their baseline is often 0). Smaller effects pass even
    when significant."""
    min_samples: Annotated[int, Field(ge=1)] = 50
    """Per version, after outlier removal; fewer is nodata. What is counted: samples,
    or for cost the records behind the inferences, for `partition_unhealthy` the
    partition-seconds of usage, for `drift_share` the rows the verdicts judged."""


class Step(Frozen):
    """One step: a traffic share (cloud), a count of sites (edge fleet), or a count of
    nodes. Exactly one is set."""

    traffic_pct: Annotated[float, Field(gt=0, le=100)] | None = None
    sites: Annotated[int, Field(ge=1)] | None = None
    nodes: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _one(self) -> Step:
        if sum(v is not None for v in (self.traffic_pct, self.sites, self.nodes)) != 1:
            raise ValueError("a step sets exactly one of traffic_pct, sites, nodes")
        return self


class Limits(Frozen):
    """When a rollout stops (Argo Rollouts' analysis limits)."""

    failure_limit: Annotated[int, Field(ge=0)] = 2
    """Failed runs tolerated in a step; one more rolls back."""
    consecutive_failures: Annotated[int, Field(ge=1)] = 2
    """Failed runs in a row that roll back, even within the failure limit."""
    consecutive_successes: Annotated[int, Field(ge=1)] = 2
    """Passing runs in a row that advance the step (or promote after the last)."""
    inconclusive_limit: Annotated[int, Field(ge=0)] = 1
    """Inconclusive or marginal runs tolerated in a step; one more pauses for a human."""


class Thresholds(Frozen):
    pass_score: Annotated[float, Field(ge=0, le=100)] = 95.0
    marginal_score: Annotated[float, Field(ge=0, le=100)] = 75.0


def _default_metrics() -> list[RolloutMetric]:
    return [RolloutMetric(name="latency_ms", critical=True, tolerance=0.1),
            RolloutMetric(name="error_rate", critical=True, tolerance=0.5),
            RolloutMetric(name="accuracy", direction="decrease", tolerance=0.02)]


class RolloutSpec(Frozen):
    """A rollout as declared: what replaces what, where, in which steps, judged how."""

    schema_: Literal["steward.rollout.spec.v1"] = Field("steward.rollout.spec.v1",
                                                        alias="schema")
    rollout_id: Name
    model: Name
    baseline_version: Name
    canary_version: Name
    targets: Annotated[list[Name], Field(min_length=1)]
    """Cloud regions, edge sites (in the order edge steps take them) or node sets."""
    tier: Literal["cloud", "edge"] = "cloud"
    steps: Annotated[list[Step], Field(min_length=1)]
    interval_s: Annotated[int, Field(ge=1)] = 60
    grace_s: Annotated[float, Field(ge=0)] = 10.0
    metrics: list[RolloutMetric] = Field(default_factory=_default_metrics)
    group_weights: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)
    """Weight per group (default 1 each)."""
    limits: Limits = Field(default_factory=Limits)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    judge: str = "mann-whitney"
    usd_per_hour: dict[Name, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)
    """Declared serving cost per version: cost per 1,000 inferences is this over the
    interval's inference count when the GPU usage of both versions' partitions was not
    measured in the interval (the measurement's `source` says which was used)."""
    team: Name | None = None
    declared_at: AwareDatetime
    evidence: dict[str, object] = Field(default_factory=dict)
    """Carried into every proposal's evidence: what the promotion policy reads that no
    canary run measures (`eval`, `model_card`, `cost.estimated_usd`)."""
    target: dict[str, object] | None = None
    """Where the canary serves (region, tier, accelerator): residency and hardware."""
    artifact: dict[str, object] | None = None
    retrain_trigger_id: str | None = None
    """Lineage: the retraining request this rollout answers (started automatically)."""
    drift_verdict_ids: list[str] = Field(default_factory=list)
    """Lineage: the drift verdicts behind that request."""

    model_config = {"populate_by_name": True}

    @model_validator(mode="after")
    def _valid(self) -> RolloutSpec:
        if self.baseline_version == self.canary_version:
            raise ValueError("canary_version must differ from baseline_version")
        names = [m.name for m in self.metrics]
        if len(set(names)) != len(names):
            raise ValueError("each metric may be listed once")
        for s in self.steps:
            if s.sites is not None and s.sites > len(self.targets):
                raise ValueError(f"step of {s.sites} sites but {len(self.targets)} targets")
        return self


class RolloutCommand(Frozen):
    """A human's say on a running rollout: resume a paused one, or abort (rolls back)."""

    schema_: Literal["steward.rollout.command.v1"] = Field("steward.rollout.command.v1",
                                                           alias="schema")
    rollout_id: Name
    model: Name
    command: Literal["resume", "abort"]
    at: AwareDatetime
    reason: str = ""

    model_config = {"populate_by_name": True}


class RolloutMessage(Frozen):
    """A record on the rollouts topic: a declaration, a command or a registered version,
    exactly one."""

    schema_: Literal["steward.rollout.message.v1"] = Field("steward.rollout.message.v1",
                                                           alias="schema")
    spec: RolloutSpec | None = None
    command: RolloutCommand | None = None
    registered: ModelRegistered | None = None

    @model_validator(mode="after")
    def _one(self) -> RolloutMessage:
        if sum(x is not None for x in (self.spec, self.command, self.registered)) != 1:
            raise ValueError("a rollout message holds exactly one of spec, command, "
                             "registered")
        return self

    model_config = {"populate_by_name": True}

    @property
    def model(self) -> str:
        return (self.spec or self.command or self.registered).model  # type: ignore[union-attr]


class RolloutStarted(Frozen):
    """Data of `steward.rollout.started`: a rollout proposed for a registered version
    that answers a retraining request; the gate's allowed action declares it."""

    schema_: Literal["steward.rollout.started.v1"] = Field("steward.rollout.started.v1",
                                                           alias="schema")
    rollout_id: Name
    model: Name
    version: Name
    baseline_version: Name
    canary_version: Name
    sites: list[Name]
    team: Name | None = None
    target: dict[str, object] | None = None
    artifact: dict[str, object] | None = None
    retrain_trigger_id: str
    drift_verdict_ids: list[str]
    reason: str
    spec: RolloutSpec
    evidence: dict[str, object] = Field(default_factory=dict)

    model_config = {"populate_by_name": True}


class VersionSamples(Frozen):
    """One (model, version, site) bucket of inference telemetry, with the raw latencies
    a rank test needs. Keyed by model on its topic, so one rollout sees every site."""

    schema_: Literal["steward.rollout.samples.v1"] = Field("steward.rollout.samples.v1",
                                                           alias="schema")
    model: Name
    version: Name
    site: Name
    start: AwareDatetime
    end: AwareDatetime
    records: Annotated[int, Field(ge=0)]
    inferences: Annotated[float, Field(ge=0)]
    """Inferences the records stand for (sum of 1/sample_rate)."""
    latency_ms: list[float]
    """Every record's latency, up to the bucket's cap (then `truncated` counts the rest)."""
    truncated: Annotated[int, Field(ge=0)] = 0
    errors: Annotated[int, Field(ge=0)] = 0
    labelled: Annotated[int, Field(ge=0)] = 0
    correct: Annotated[int, Field(ge=0)] = 0

    model_config = {"populate_by_name": True}


class VersionUsage(Frozen):
    """One GPU partition window of a model version, re-keyed by model for the rollout
    judge (`rollout-usage`): what it cost and whether it got what it was promised."""

    schema_: Literal["steward.rollout.usage.v1"] = Field("steward.rollout.usage.v1",
                                                         alias="schema")
    model: Name
    version: Name
    site: Name
    partition: str
    start: AwareDatetime
    end: AwareDatetime
    allocated_usd: Annotated[float, Field(ge=0)] | None
    """The window's cost of the share held (None: the card has no price)."""
    starved: bool
    oversubscribed: bool
    """The partition's card was promised more than it has in the window."""

    model_config = {"populate_by_name": True}


class Measurement(Frozen):
    """One metric's comparison in one analysis run: every number behind its result."""

    metric: str
    group: str
    direction: Direction
    critical: bool
    result: Result
    n_baseline: int
    n_canary: int
    removed_baseline: int = 0
    removed_canary: int = 0
    baseline: float | None = None
    """Median (mean for rates and cost) after outlier removal."""
    canary: float | None = None
    effect: float | None = None
    """(canary - baseline) / baseline; canary - baseline for shares (test `difference`)."""
    tolerance: float
    u: float | None = None
    p_value: float | None = None
    test: str
    """`mann-whitney`, `effect` (relative, one value per version), `difference`
    (canary - baseline of shares) or `none`."""
    source: str | None = None
    """Where a value came from when it could come from two: cost `measured` (GPU usage)
    or `declared` (`usd_per_hour`)."""


class Judgement(Frozen):
    """The judge's answer for one run: per metric results, group scores, the verdict."""

    verdict: Verdict
    score: float
    group_scores: dict[str, float]
    measurements: list[Measurement]
    reason: str
    judge: str


Phase = Literal["pending", "running", "awaiting", "paused", "promoted", "rolled_back",
                "aborted"]


class AnalysisRun(Frozen):
    """One interval of one step judged: what every action of a rollout carries."""

    run_id: str
    rollout_id: Name
    step: int
    index: int
    start: AwareDatetime
    end: AwareDatetime
    sites: list[Name]
    """Sites of the step that reported canary telemetry in the interval."""
    waiting: list[Name]
    """Sites of the step that did not (offline): waited on, not judged."""
    judgement: Judgement


class RolloutAction(Frozen):
    """Data of every rollout proposal: step advanced, promoted, rolled back, paused."""

    schema_: Literal["steward.rollout.action.v1"] = Field("steward.rollout.action.v1",
                                                          alias="schema")
    rollout_id: Name
    model: Name
    baseline_version: Name
    canary_version: Name
    version: Name
    """The version the action is about: the canary."""
    phase: Phase
    """The phase the rollout enters once the gate allows the action."""
    step: int
    """The step the run was judged in (0-based)."""
    next_step: int | None = None
    traffic_pct: float | None = None
    """The next step's traffic share (step advanced)."""
    sites: list[Name]
    """Every site the action reaches: all targets for a rollback, the step's sites else."""
    reason: str
    run: AnalysisRun | None = None
    """The analysis run behind it (None for a human's abort)."""
    team: Name | None = None
    evidence: dict[str, object] = Field(default_factory=dict)
    target: dict[str, object] | None = None
    artifact: dict[str, object] | None = None
    retrain_trigger_id: str | None = None
    drift_verdict_ids: list[str] = Field(default_factory=list)

    model_config = {"populate_by_name": True}


class RolloutAnalysis(Frozen):
    """Every analysis run as judged, on its own topic (keyed by model): the runs that led
    to no action are kept too, with the phase the rollout was left in."""

    schema_: Literal["steward.rollout.analysis.v1"] = Field("steward.rollout.analysis.v1",
                                                            alias="schema")
    rollout_id: Name
    model: Name
    baseline_version: Name
    canary_version: Name
    phase: Phase
    """The rollout's phase after the run (`awaiting` when it led to a proposal)."""
    proposal_id: str | None = None
    """The proposal the run led to, if any."""
    run: AnalysisRun

    model_config = {"populate_by_name": True}
