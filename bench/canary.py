"""Canary judgements/s for 1,000 concurrent rollouts: the judge alone, and the rollout
processor end to end (samples in, intervals closed, judged, proposals out).

    .venv/bin/python bench/canary.py [--rollouts 1000] [--intervals 3] [--per-bucket 100]

Baseline in the same run: scipy's mannwhitneyu alone on the same latency samples, one
call per rollout (what any Mann-Whitney judge costs at least). A judgement compares
four metrics (latency, error rate, accuracy, cost per 1,000), so it makes three rank
tests plus outlier removal, scoring and the measurement records.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

import numpy as np
from _report import Results, add_json_arg
from scipy.stats import mannwhitneyu

from processors.canary.judge import mann_whitney
from processors.canary.machine import judge_config, metric_data
from processors.rollout import Rollouts
from steward.schema.rollout import RolloutMessage, RolloutMetric, RolloutSpec, VersionSamples
from steward.stream import Source

T0 = datetime(2026, 1, 1, tzinfo=UTC)
METRICS = [RolloutMetric(name="latency_ms", critical=True),
           RolloutMetric(name="error_rate", critical=True, tolerance=0.5),
           RolloutMetric(name="accuracy", direction="decrease", tolerance=0.02),
           RolloutMetric(name="cost_per_1k")]


def spec(i: int) -> RolloutSpec:
    return RolloutSpec(rollout_id=f"r{i}", model=f"m{i}", baseline_version="1",
                       canary_version="2", targets=["eu-west-1"],
                       steps=[{"traffic_pct": 10}, {"traffic_pct": 50}], interval_s=60,
                       grace_s=10, metrics=METRICS, usd_per_hour={"1": 4.0, "2": 4.0 / 9},
                       limits={"consecutive_successes": 100}, declared_at=T0)


def bucket(rng: np.random.Generator, i: int, version: str, at: int, n: int) -> VersionSamples:
    return VersionSamples(model=f"m{i}", version=version, site="eu-west-1",
                          start=T0 + timedelta(seconds=at), end=T0 + timedelta(seconds=at + 60),
                          records=n, inferences=n, latency_ms=rng.lognormal(3, 0.4, n).tolist(),
                          errors=int(rng.binomial(n, 0.01)), labelled=n,
                          correct=int(n * 0.9))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rollouts", type=int, default=1000)
    ap.add_argument("--intervals", type=int, default=3)
    ap.add_argument("--per-bucket", type=int, default=100)
    add_json_arg(ap)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    specs = [spec(i) for i in range(a.rollouts)]
    data = [(bucket(rng, i, "1", 0, a.per_bucket * 9), bucket(rng, i, "2", 0, a.per_bucket))
            for i in range(a.rollouts)]

    t = time.perf_counter()
    for b, c in data:
        mannwhitneyu(c.latency_ms, b.latency_ms, alternative="two-sided")
    base_s = time.perf_counter() - t

    inputs = [(s, judge_config(s), metric_data(s, [b], [c]))
              for s, (b, c) in zip(specs, data, strict=True)]
    t = time.perf_counter()
    verdicts = [mann_whitney(cfg, d).verdict for _, cfg, d in inputs]
    judge_s = time.perf_counter() - t

    proc = Rollouts()
    state = proc.initial_state()
    for i, s in enumerate(specs):
        state, _ = proc.step(state, RolloutMessage(spec=s), T0, Source("rollouts", 0, i))
    records = [bucket(rng, i, v, 60 * k, a.per_bucket * (9 if v == "1" else 1))
               for k in range(a.intervals + 2) for i in range(a.rollouts) for v in ("1", "2")]
    t = time.perf_counter()
    for off, r in enumerate(records):
        state, _ = proc.step(state, r, T0, Source("samples", 0, off))
    proc_s = time.perf_counter() - t
    runs = sum(r.runs for r in state.rollouts.values())

    counts = {v: verdicts.count(v) for v in sorted(set(verdicts))}
    print(f"{a.rollouts} rollouts, canary {a.per_bucket} / baseline {a.per_bucket * 9} "
          f"latencies per interval; verdicts {counts}")
    print(f"  scipy mannwhitneyu alone (1 test):   {a.rollouts / base_s:10.0f} /s")
    print(f"  judge (4 metrics, 3 tests):          {a.rollouts / judge_s:10.0f} judgements/s")
    print(f"  rollout processor ({runs} runs, {len(records)} sample records): "
          f"{runs / proc_s:10.0f} judgements/s")

    out = Results("canary")
    base = "scipy mannwhitneyu alone, 1 test per rollout"
    out.add(f"canary judge, {a.rollouts} rollouts (4 metrics, 3 tests)", a.rollouts / judge_s,
            "judgements/s", base, a.rollouts / base_s)
    out.add("rollout processor end to end", runs / proc_s, "judgements/s", base,
            a.rollouts / base_s)
    out.write(a.json)


if __name__ == "__main__":
    main()
