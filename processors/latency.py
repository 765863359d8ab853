"""Latency aggregates for a window: raw samples and OTLP histograms, and their p95.

Raw samples give an exact percentile (linear interpolation, numpy's default).
Histograms give Prometheus' `histogram_quantile` estimate: linear within the
bucket that holds the rank. When a window holds both, samples are folded into
the histogram's buckets, so one estimator answers for the whole window.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

import numpy as np

UNIT_TO_MS = {"ms": 1.0, "s": 1000.0, "us": 0.001, "ns": 1e-6, "": 1.0}
"""Latency units understood; an empty unit is read as milliseconds."""


@dataclass
class LatencyAgg:
    """Everything one version did in one window."""

    samples: list[float] = field(default_factory=list)
    hist: dict[tuple[float, ...], list[int]] = field(default_factory=dict)

    def add_sample(self, ms: float) -> None:
        self.samples.append(ms)

    def add_histogram(self, bounds: tuple[float, ...], counts: list[int]) -> None:
        held = self.hist.setdefault(bounds, [0] * len(counts))
        for i, c in enumerate(counts):
            held[i] += c

    @property
    def count(self) -> int:
        return len(self.samples) + sum(sum(c) for c in self.hist.values())

    @property
    def method(self) -> str:
        return "histogram" if self.hist else "samples"

    def p95(self) -> float:
        return self.quantile(0.95)

    def quantile(self, q: float) -> float:
        if not self.hist:
            return float(np.percentile(self.samples, q * 100)) if self.samples else float("nan")
        bounds, counts = max(self.hist.items(), key=lambda kv: sum(kv[1]))
        counts = list(counts)
        for ms in self.samples:
            counts[bisect_left(bounds, ms)] += 1
        return histogram_quantile(q, bounds, counts)


def histogram_quantile(q: float, bounds: tuple[float, ...], counts: list[int]) -> float:
    """Prometheus-style quantile of an explicit-bucket histogram (bucket i = (b[i-1], b[i]])."""
    total = sum(counts)
    if total == 0:
        return float("nan")
    rank = q * total
    cumulative = 0
    for i, c in enumerate(counts):
        if cumulative + c >= rank and c > 0:
            if i == len(bounds):  # the overflow bucket: the best we can say is its lower edge
                return bounds[-1] if bounds else float("nan")
            lower = bounds[i - 1] if i > 0 else min(0.0, bounds[0])
            upper = bounds[i]
            return lower + (upper - lower) * (rank - cumulative) / c
        cumulative += c
    return bounds[-1] if bounds else float("nan")


def delta_counts(prev: list[int] | None, current: list[int]) -> list[int]:
    """Counts added since `prev` for a cumulative series; a reset starts over from `current`."""
    if prev is None or len(prev) != len(current) or any(c < p for c, p in zip(current, prev,
                                                                              strict=True)):
        return list(current)
    return [c - p for c, p in zip(current, prev, strict=True)]
