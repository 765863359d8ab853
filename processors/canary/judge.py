"""The canary judge: canary against baseline, metric by metric, Kayenta style.

Per metric: outliers removed (IQR, factor 3: only far-out points, so a real shift
survives), then a two-sided Mann-Whitney U test at confidence 0.98 *and* an
effect-size tolerance: a difference must be both significant and large enough to
matter, or noise on big samples would fail every canary. Only a change in the bad
direction fails (a faster canary passes a latency check). Results are pass / high /
low / nodata; group score = pass / (pass + high + low) x 100; the total is the weighted
mean of the groups with data. A failed critical metric fails the run outright, and
half or more of the metrics without data make it inconclusive: too little evidence
is never a pass.

Three kinds of metric data: `samples` (continuous values: latency), `binary` (0/1 per
inference: errors, correct predictions; no outlier removal, since every minority value
would look like one, and means, not medians), and `point` (one value per version, e.g.
cost per 1,000 inferences: the effect alone decides, there is nothing to test). A point
metric that is a share (drift share, unhealthy partition time) is compared by its
difference, canary - baseline, since its baseline is often 0 and any relative change
of 0 is unbounded.

Pure: no I/O, no clock. Judges are registered by name in `JUDGES`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy.stats import mannwhitneyu

from steward.schema.rollout import Judgement, Measurement, Result, RolloutMetric, Verdict

Kind = Literal["samples", "binary", "point"]
EFFECT_CAP = 1e6
"""|effect| is capped: a baseline of zero makes any canary value an unbounded change."""


@dataclass(frozen=True)
class MetricData:
    """What one metric measured in one run. For `point`, `baseline`/`canary` hold one
    value each and `n_baseline`/`n_canary` the counts behind them."""

    kind: Kind
    baseline: Sequence[float] | np.ndarray
    canary: Sequence[float] | np.ndarray
    n_baseline: int | None = None
    n_canary: int | None = None
    source: str | None = None
    """Kept on the measurement: where the values came from (cost: measured or declared)."""
    difference: bool = False
    """`point`: the effect is canary - baseline, not relative (shares)."""


@dataclass(frozen=True)
class JudgeConfig:
    metrics: Sequence[RolloutMetric]
    group_weights: Mapping[str, float] = field(default_factory=dict)
    pass_score: float = 95.0
    marginal_score: float = 75.0
    confidence: float = 0.98
    outlier_factor: float = 3.0
    nodata_share: float = 0.5


def remove_outliers(x: np.ndarray, factor: float) -> np.ndarray:
    """Values within [Q1 - factor*IQR, Q3 + factor*IQR] (numpy's linear quantiles)."""
    if x.size < 4:
        return x
    q1, q3 = np.percentile(x, [25, 75])
    iqr = q3 - q1
    return x[(x >= q1 - factor * iqr) & (x <= q3 + factor * iqr)]


def _effect(base: float, can: float) -> float:
    if base == 0:
        return 0.0 if can == 0 else float(np.sign(can)) * EFFECT_CAP
    return float(np.clip((can - base) / abs(base), -EFFECT_CAP, EFFECT_CAP))


def _classify(effect: float, significant: bool, m: RolloutMetric) -> Result:
    if not significant:
        return "pass"
    if effect > m.tolerance and m.direction in ("increase", "either"):
        return "high"
    if effect < -m.tolerance and m.direction in ("decrease", "either"):
        return "low"
    return "pass"


def measure(m: RolloutMetric, data: MetricData | None, cfg: JudgeConfig) -> Measurement:
    """One metric's comparison, with every number kept."""
    group = m.group or m.name
    common = {"metric": m.name, "group": group, "direction": m.direction,
              "critical": m.critical, "tolerance": m.tolerance}
    if data is None:
        return Measurement(**common, result="nodata", n_baseline=0, n_canary=0, test="none")
    if data.kind == "point":
        nb, nc = data.n_baseline or 0, data.n_canary or 0
        test = "difference" if data.difference else "effect"
        if nb < m.min_samples or nc < m.min_samples or not len(data.baseline) \
                or not len(data.canary):
            return Measurement(**common, result="nodata", n_baseline=nb, n_canary=nc,
                               test=test, source=data.source)
        b, c = float(data.baseline[0]), float(data.canary[0])
        eff = c - b if data.difference else _effect(b, c)
        return Measurement(**common, result=_classify(eff, True, m), n_baseline=nb,
                           n_canary=nc, baseline=b, canary=c, effect=eff, test=test,
                           source=data.source)
    base = np.asarray(data.baseline, dtype=float)
    can = np.asarray(data.canary, dtype=float)
    if data.kind == "samples":
        kept_b = remove_outliers(base, cfg.outlier_factor)
        kept_c = remove_outliers(can, cfg.outlier_factor)
    else:
        kept_b, kept_c = base, can
    counts = {"n_baseline": int(kept_b.size), "n_canary": int(kept_c.size),
              "removed_baseline": int(base.size - kept_b.size),
              "removed_canary": int(can.size - kept_c.size)}
    if kept_b.size < m.min_samples or kept_c.size < m.min_samples:
        return Measurement(**common, **counts, result="nodata", test="mann-whitney")
    centre = np.median if data.kind == "samples" else np.mean
    b, c = float(centre(kept_b)), float(centre(kept_c))
    res = mannwhitneyu(kept_c, kept_b, alternative="two-sided")
    p = float(res.pvalue)
    p = 1.0 if np.isnan(p) else p
    eff = _effect(b, c)
    result = _classify(eff, p < 1.0 - cfg.confidence, m)
    return Measurement(**common, **counts, result=result, baseline=b, canary=c, effect=eff,
                       u=float(res.statistic), p_value=p, test="mann-whitney")


def score(measurements: Sequence[Measurement], cfg: JudgeConfig,
          judge: str = "mann-whitney") -> Judgement:
    """Group scores, weighted total and verdict from per-metric results."""
    groups: dict[str, list[Measurement]] = {}
    for ms in measurements:
        groups.setdefault(ms.group, []).append(ms)
    group_scores: dict[str, float] = {}
    for g, ms in groups.items():
        judged = [x for x in ms if x.result != "nodata"]
        if judged:
            group_scores[g] = 100.0 * sum(x.result == "pass" for x in judged) / len(judged)
    weights = {g: cfg.group_weights.get(g, 1.0) for g in group_scores}
    total = sum(weights.values())
    value = sum(group_scores[g] * w for g, w in weights.items()) / total if total else 0.0
    failed = [x.metric for x in measurements if x.result in ("high", "low")]
    critical = [x.metric for x in measurements if x.critical and x.result in ("high", "low")]
    nodata = [x.metric for x in measurements if x.result == "nodata"]
    verdict: Verdict
    if critical:
        verdict, value = "fail", 0.0
        reason = f"critical metric failed: {', '.join(critical)}"
    elif not measurements or len(nodata) >= cfg.nodata_share * len(measurements):
        verdict, value = "inconclusive", 0.0
        reason = f"too little data: {', '.join(nodata) or 'no metrics'}"
    else:
        verdict = ("pass" if value >= cfg.pass_score else
                   "marginal" if value >= cfg.marginal_score else "fail")
        reason = f"score {value:.1f} (pass {cfg.pass_score:g}, marginal " \
                 f"{cfg.marginal_score:g})" + (f"; failed: {', '.join(failed)}" if failed else "")
    return Judgement(verdict=verdict, score=round(value, 6), group_scores=group_scores,
                     measurements=list(measurements), reason=reason, judge=judge)


def mann_whitney(cfg: JudgeConfig, data: Mapping[str, MetricData]) -> Judgement:
    """Kayenta's NetflixACAJudge with its Mann-Whitney classifier."""
    return score([measure(m, data.get(m.name), cfg) for m in cfg.metrics], cfg,
                 "mann-whitney")


Judge = Callable[[JudgeConfig, Mapping[str, MetricData]], Judgement]
JUDGES: dict[str, Judge] = {"mann-whitney": mann_whitney}


def get(name: str) -> Judge:
    try:
        return JUDGES[name]
    except KeyError:
        raise ValueError(f"unknown judge {name!r}; known: {', '.join(sorted(JUDGES))}") \
            from None
