"""Measured cost, partition health and drift share in the rollout judge: the GPU usage and
drift verdicts joined per version and interval, numbers worked by hand; an equally good
canary that costs 30% more on its measured GPUs is marginal, never a pass; every run is
kept as an analysis record."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from processors.canary.judge import JudgeConfig, mann_whitney
from processors.canary.measures import metric_data
from processors.rollout import Rollouts
from processors.rollout_usage import RolloutUsage
from steward import topics as T
from steward.schema import Window
from steward.schema.drift import ColumnDrift, DatasetDrift, DriftVerdict
from steward.schema.gpu import PartitionUsage
from steward.schema.rollout import RolloutMetric, VersionUsage
from steward.stream import run_steps
from tests.processors.test_rollout import SPEC, T0, bucket, closer, decl, interval

COST = [RolloutMetric(name="latency_ms", critical=True, tolerance=0.1),
        RolloutMetric(name="error_rate", critical=True, tolerance=0.5),
        RolloutMetric(name="accuracy", direction="decrease", tolerance=0.02),
        RolloutMetric(name="cost_per_1k", tolerance=0.1)]
COST_SPEC = SPEC.model_copy(update={"metrics": COST, "steps": SPEC.steps[:1]})


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def use(version: str, start: float, end: float, usd: float | None, *, part: str = "p",
        starved: bool = False, over: bool = False) -> VersionUsage:
    return VersionUsage(model="fraud", version=version, site="eu-west-1", partition=part,
                        start=at(start), end=at(end), allocated_usd=usd, starved=starved,
                        oversubscribed=over)


def verdict(version: str, start: float, end: float, drifted: int, columns: int,
            rows: int = 100) -> DriftVerdict:
    cols = [ColumnDrift(column=f"c{i}", kind="numerical", stattest="ks", threshold=0.05,
                        score=0.5, drifted=i < drifted, reference_rows=100, current_rows=rows)
            for i in range(columns)]
    judged = DatasetDrift(method="calibrated", columns=cols,
                          drifted_columns=[c.column for c in cols if c.drifted],
                          share=drifted / columns, drift_share=0.5, dataset_drift=False)
    return DriftVerdict(id=f"v-{version}-{start}", model="fraud", version=version,
                        site="eu-west-1", window=Window(start=at(start), end=at(end)),
                        rows=rows, evidently=judged, calibrated=judged,
                        decided_by="calibrated", drift=False)


def one_interval(version: str, n: int = 100) -> list:
    return [bucket(version, 10 * b, n=n) for b in range(6)]


def test_measured_cost_is_prorated_over_the_interval_by_hand():
    """Interval [0, 60): the baseline's 600 inferences ran on a partition whose 60 s
    window cost $0.06 (0.1 $/1k); the canary's 600 on one whose 120 s window cost $0.156,
    half of it inside: $0.078, 0.13 $/1k, 30% more."""
    base, can = one_interval("1.0"), one_interval("2.0")
    usage = [use("1.0", 0, 60, 0.06), use("2.0", 0, 120, 0.156), use("2.0", 120, 240, 9.0)]
    d = metric_data(COST_SPEC, base, can, at(0), at(60), usage)["cost_per_1k"]
    assert (d.kind, d.source, d.n_baseline, d.n_canary) == ("point", "measured", 600, 600)
    assert d.baseline == [pytest.approx(0.1)] and d.canary == [pytest.approx(0.13)]
    j = mann_whitney(JudgeConfig(COST), metric_data(COST_SPEC, base, base, at(0), at(60),
                                                    [*usage[:1], use("2.0", 0, 60, 0.078)]))
    cost = j.measurements[3]
    assert (cost.result, cost.source, cost.test) == ("high", "measured", "effect")
    assert cost.effect == pytest.approx(0.3)
    assert (j.verdict, j.score) == ("marginal", 75.0)  # equally good, 30% dearer


def test_declared_cost_when_a_version_has_no_priced_usage():
    """A canary partition with no price (or none reported) cannot be measured: both sides
    fall back to the declared $3.60/h = $0.06 a minute, 0.1 $/1k each, and say so."""
    spec = COST_SPEC.model_copy(update={"usd_per_hour": {"1.0": 3.6, "2.0": 3.6}})
    base, can = one_interval("1.0"), one_interval("2.0")
    for usage in ([use("1.0", 0, 60, 0.06), use("2.0", 0, 60, None)],
                  [use("1.0", 0, 60, 0.06)], []):
        d = metric_data(spec, base, can, at(0), at(60), usage)["cost_per_1k"]
        assert d.source == "declared"
        assert d.baseline == d.canary == [pytest.approx(0.1)]
    d = metric_data(COST_SPEC, base, can, at(0), at(60), [])["cost_per_1k"]
    assert (d.baseline, d.canary, d.source) == ([], [], "declared")  # nothing declared


def test_partition_health_share_by_hand():
    """The canary's two partitions over [0, 60): one starved for its window [0, 30), the
    other on an oversubscribed card for [45, 105) (15 s inside): 30 + 15 of 120
    partition-seconds = 3/8 unhealthy; the baseline's 60 s are healthy: difference 3/8."""
    usage = [use("1.0", 0, 60, 0.06),
             use("2.0", 0, 30, 0.01, part="a", starved=True), use("2.0", 30, 60, 0.01, part="a"),
             use("2.0", 0, 45, 0.01, part="b"), use("2.0", 45, 105, 0.02, part="b", over=True)]
    d = metric_data(COST_SPEC, one_interval("1.0"), one_interval("2.0"), at(0), at(60),
                    usage)["partition_unhealthy"]
    assert (d.baseline, d.n_baseline, d.n_canary) == ([0.0], 60, 120)
    assert d.canary == [pytest.approx(3 / 8)] and d.difference
    m = RolloutMetric(name="partition_unhealthy", tolerance=0.25, min_samples=60,
                      critical=True)
    j = mann_whitney(JudgeConfig([m]), {"partition_unhealthy": d})
    (health,) = j.measurements
    assert (health.result, health.test, health.effect) == ("high", "difference",
                                                           pytest.approx(3 / 8))
    assert j.verdict == "fail" and j.reason == "critical metric failed: partition_unhealthy"


def test_drift_share_by_hand_and_nodata_without_verdicts():
    """The canary's verdicts over [0, 60): [0, 120) with 2 of 4 columns drifted (half of
    it inside) and [0, 60) with none of 4: (0.5 x 2) / (0.5 x 4 + 4) = 1/6; the baseline's
    one verdict, 0 of 4. No canary verdicts: nodata, and never a pass."""
    base, can = one_interval("1.0"), one_interval("2.0")
    verdicts = [verdict("1.0", 0, 60, 0, 4), verdict("2.0", 0, 120, 2, 4),
                verdict("2.0", 0, 60, 0, 4, rows=80)]
    d = metric_data(COST_SPEC, base, can, at(0), at(60), (), verdicts)["drift_share"]
    assert (d.baseline, d.n_baseline, d.n_canary) == ([0.0], 100, 180)
    assert d.canary == [pytest.approx(1 / 6)]
    m = RolloutMetric(name="drift_share", tolerance=0.1, min_samples=50)
    (r,) = mann_whitney(JudgeConfig([m]), {"drift_share": d}).measurements
    assert (r.result, r.effect) == ("high", pytest.approx(1 / 6))
    none = metric_data(COST_SPEC, base, can, at(0), at(60), (), verdicts[:1])["drift_share"]
    j = mann_whitney(JudgeConfig([m]), {"drift_share": none})
    assert j.measurements[0].result == "nodata" and j.verdict == "inconclusive"


def test_rollout_waits_for_usage_and_pauses_a_dearer_canary_as_marginal():
    """Through the processor: interval 1 is not judged until both versions' usage reaches
    its end; two marginal runs (30% dearer, measured) pause the rollout for a human.
    Every run is an analysis record with the cost measurement and its source."""
    proc = Rollouts()
    first = [use("1.0", 0, 60, 0.06), use("2.0", 0, 60, 0.078)]
    state, out = run_steps(proc, [decl(COST_SPEC), *first, *interval(0), *interval(1),
                                  closer(1)], T0)
    runs = [e.record for e in out if e.topic is T.ROLLOUT_ANALYSIS]
    assert [e.topic for e in out] == [T.ROLLOUT_ANALYSIS] and runs[0].run.index == 0
    cost = {m.metric: m for m in runs[0].run.judgement.measurements}["cost_per_1k"]
    assert (cost.source, cost.baseline, cost.canary) == ("measured", pytest.approx(0.1),
                                                         pytest.approx(0.13))
    assert (runs[0].run.judgement.verdict, runs[0].phase) == ("marginal", "running")
    late = [use("1.0", 60, 120, 0.06), use("2.0", 60, 120, 0.078)]
    state, out = run_steps(proc, late, T0, state)
    (run, proposal) = out
    assert run.topic is T.ROLLOUT_ANALYSIS and run.key == "fraud"
    assert proposal.event.get_type() == "steward.rollout.paused"
    assert run.record.proposal_id == proposal.event.get_id() and run.record.phase == "awaiting"
    assert proposal.event.get_data()["evidence"]["metrics"]["cost_per_1k"]["result"] == "high"
    r = state.rollouts["r1"]
    assert r.usage == [] and r.phase == "awaiting"  # judged windows are let go


def test_rollout_usage_rekeys_version_windows_by_model():
    w = Window(start=T0, end=at(60))
    u = PartitionUsage(id="x", partition="n/G/mig1", window=w, site="eu-west-1", tier="cloud",
                       node="n", gpu_uuid="G", card="H100-80GB", profile="3g.40gb",
                       model="fraud", version="2.0", team="risk", samples=2,
                       compute_share=3 / 7, memory_share=0.5, compute_use=1.0,
                       compute_card_use=3 / 7, promised_compute=3 / 7, allocated_usd=0.05,
                       breaches=["starved", "memory_pressure"])
    _, out = run_steps(RolloutUsage(), [u, u.model_copy(update={"version": None})], T0)
    (e,) = out
    assert (e.topic, e.key) == (T.ROLLOUT_USAGE, "fraud")
    assert e.record == use("2.0", 0, 60, 0.05, part="n/G/mig1", starved=True)
