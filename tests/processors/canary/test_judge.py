"""The canary judge on fixed samples: the issue's cases, and numbers worked by hand."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from processors.canary.judge import (
    JUDGES,
    JudgeConfig,
    MetricData,
    get,
    mann_whitney,
    measure,
    remove_outliers,
    score,
)
from steward.schema.rollout import Measurement, RolloutMetric

METRICS = [RolloutMetric(name="latency_ms", critical=True, tolerance=0.1),
           RolloutMetric(name="error_rate", critical=True, tolerance=0.5),
           RolloutMetric(name="accuracy", direction="decrease", tolerance=0.02),
           RolloutMetric(name="cost_per_1k", tolerance=0.1)]
CFG = JudgeConfig(METRICS)


def binary(rng: np.random.Generator, p: float, n: int) -> np.ndarray:
    return (rng.random(n) < p).astype(float)


def data(seed: int, *, lat_scale: float = 1.0, acc: float = 0.9, cost: float = 1.0,
         n: int = 500, sigma: float = 0.3) -> dict[str, MetricData]:
    """Baseline and canary from one seeded generator: canary drawn like the baseline
    unless told otherwise."""
    rng = np.random.default_rng(seed)
    return {
        "latency_ms": MetricData("samples", rng.lognormal(3, sigma, n),
                                 rng.lognormal(3, sigma, n) * lat_scale),
        "error_rate": MetricData("binary", binary(rng, 0.02, n), binary(rng, 0.02, n)),
        "accuracy": MetricData("binary", binary(rng, 0.9, n), binary(rng, acc, n)),
        "cost_per_1k": MetricData("point", [2.0], [2.0 * cost], n, n),
    }


def results(j) -> dict[str, str]:
    return {m.metric: m.result for m in j.measurements}


def test_identical_canary_passes_with_full_score():
    d = data(1)
    same = {k: MetricData(v.kind, v.baseline, v.baseline, v.n_baseline, v.n_baseline)
            for k, v in d.items()}
    j = mann_whitney(CFG, same)
    assert j.verdict == "pass" and j.score == 100.0
    lat = j.measurements[0]
    assert lat.removed_baseline == lat.removed_canary == 2  # far outliers, gone on both sides
    assert lat.p_value == 1.0 and lat.effect == 0.0 and lat.u == 498 * 498 / 2
    assert set(results(j).values()) == {"pass"}


def test_latency_regression_fails_on_a_critical_metric():
    j = mann_whitney(CFG, data(2, lat_scale=1.3))
    assert results(j)["latency_ms"] == "high"
    assert j.verdict == "fail" and j.score == 0.0
    assert j.reason == "critical metric failed: latency_ms"
    lat = j.measurements[0]
    assert lat.p_value < 1e-10 and lat.effect == pytest.approx(0.3, abs=0.05)


def test_accuracy_drop_fails_by_score():
    j = mann_whitney(CFG, data(3, acc=0.8))
    assert results(j) == {"latency_ms": "pass", "error_rate": "pass", "accuracy": "low",
                          "cost_per_1k": "pass"}
    assert (j.verdict, j.score) == ("marginal", 75.0)
    # with equal weights 3 of 4 groups is exactly marginal (Kayenta's 75): a quality drop
    # must weigh more than cost, so the spec weights its group
    weighted = JudgeConfig(METRICS, {"accuracy": 3.0})
    j = mann_whitney(weighted, data(3, acc=0.8))
    assert j.verdict == "fail" and j.score == pytest.approx(300 / 6)


def test_noisy_but_equal_metrics_pass():
    for seed in range(10, 20):
        j = mann_whitney(CFG, data(seed, sigma=0.8))
        assert j.verdict == "pass", (seed, j.reason)


def test_too_little_data_is_inconclusive_not_pass():
    d = data(4, n=20)  # under the default 50 samples per version
    j = mann_whitney(CFG, d)
    assert set(results(j).values()) == {"nodata"}
    assert j.verdict == "inconclusive" and j.score == 0.0
    # half the metrics without data is already inconclusive
    half = {k: v for k, v in data(4).items() if k in ("latency_ms", "error_rate")}
    assert mann_whitney(CFG, half).verdict == "inconclusive"
    # one of four without data (no labels yet) is judged on the rest
    three = {k: v for k, v in data(4).items() if k != "accuracy"}
    j = mann_whitney(CFG, three)
    assert j.verdict == "pass" and results(j)["accuracy"] == "nodata"


def test_cost_only_regression_is_marginal():
    j = mann_whitney(CFG, data(5, cost=1.3))
    assert results(j) == {"latency_ms": "pass", "error_rate": "pass", "accuracy": "pass",
                          "cost_per_1k": "high"}
    assert j.verdict == "marginal" and j.score == 75.0
    cost = j.measurements[3]
    assert (cost.baseline, cost.canary, cost.effect) == (2.0, 2.6, pytest.approx(0.3))
    assert cost.test == "effect" and cost.p_value is None


def test_outlier_removal_by_hand():
    # Q1 = 3, Q3 = 7 (linear), IQR = 4: keep [3 - 12, 7 + 12] = [-9, 19]
    x = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 100], dtype=float)
    assert np.percentile(x, [25, 75]).tolist() == [3.25, 7.75]
    kept = remove_outliers(x, 3.0)  # Q1 3.25, Q3 7.75, IQR 4.5: [-10.25, 21.25]
    assert kept.tolist() == list(range(1, 10))


def test_measure_matches_scipy_and_hand_numbers():
    m = RolloutMetric(name="latency_ms", tolerance=0.1, min_samples=3)
    r = measure(m, MetricData("samples", [1.0, 2.0, 3.0], [4.0, 5.0, 6.0]), CFG)
    # U of the canary = 9 (every canary value above every baseline one), exact p = 0.1
    assert (r.u, r.p_value) == (9.0, pytest.approx(0.1))
    assert (r.baseline, r.canary, r.effect) == (2.0, 5.0, 1.5)
    assert r.result == "pass"  # 0.1 is not significant at 0.98: big but unproven
    rng = np.random.default_rng(7)
    b, c = rng.normal(100, 10, 200), rng.normal(104, 10, 200)
    r = measure(m, MetricData("samples", b, c), CFG)
    ref = mannwhitneyu(c, b, alternative="two-sided")
    assert (r.u, r.p_value) == (float(ref.statistic), float(ref.pvalue))
    assert r.p_value < 0.02 and 0 < r.effect < 0.1 and r.result == "pass"  # within tolerance
    tight = m.model_copy(update={"tolerance": 0.01})
    assert measure(tight, MetricData("samples", b, c), CFG).result == "high"
    down = m.model_copy(update={"direction": "decrease", "tolerance": 0.01})
    assert measure(down, MetricData("samples", b, c), CFG).result == "pass"  # not the bad way


def test_scoring_by_hand():
    def ms(metric: str, group: str, result: str, critical: bool = False) -> Measurement:
        return Measurement(metric=metric, group=group, direction="increase",
                           critical=critical, result=result, n_baseline=1, n_canary=1,
                           tolerance=0.1, test="mann-whitney")

    cfg = JudgeConfig(METRICS, {"latency": 2.0, "errors": 1.0}, 95, 75)
    # latency group 1 of 2 passes = 50, errors 1 of 1 = 100 (nodata not counted)
    j = score([ms("p50", "latency", "pass"), ms("p99", "latency", "high"),
               ms("err", "errors", "pass"), ms("acc", "quality", "nodata")], cfg)
    assert j.group_scores == {"latency": 50.0, "errors": 100.0}
    assert j.score == pytest.approx((2 * 50 + 100) / 3) and j.verdict == "fail"
    j = score([ms("p50", "latency", "pass"), ms("err", "errors", "high", critical=True)], cfg)
    assert (j.verdict, j.score) == ("fail", 0.0)


def test_judges_are_registered_by_name():
    assert get("mann-whitney") is mann_whitney and "mann-whitney" in JUDGES
    with pytest.raises(ValueError, match="unknown judge"):
        get("t-test")
