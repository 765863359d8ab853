"""What the judge compares, per metric, from one interval of a rollout: the two versions'
sample buckets, GPU partition windows and drift verdicts.

Samples are bucketed finer than any interval; GPU usage windows and drift windows need
not be, so a window that overlaps the interval counts by the share of it that does
(a 120 s GPU window half inside a 60 s interval brings half its cost). Pure.

- `cost_per_1k`: the version's GPU cost in the interval / its inferences x 1000. The
  cost is *measured* (the allocated cost of its partitions' usage windows) when both
  versions' partitions reported priced usage for the interval; otherwise *declared*
  (`usd_per_hour` x the interval), for both, so the two sides always come from the same
  source; the measurement records which.
- `partition_unhealthy`: the share of the version's partition-seconds in the interval
  that were starved or on an oversubscribed card (gpu-usage's breaches, vs promise).
- `drift_share`: the share of drifted columns in the version's drift verdicts (under
  the method that decides), windows weighted by their overlap. No verdicts: nodata.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np

from processors.canary.judge import MetricData
from steward.schema.drift import DriftVerdict
from steward.schema.rollout import RolloutSpec, VersionSamples, VersionUsage


def overlap(a: datetime, b: datetime, start: datetime, end: datetime) -> float:
    """Seconds [a, b) shares with [start, end)."""
    return max(0.0, (min(b, end) - max(a, start)).total_seconds())


def _share(a: datetime, b: datetime, start: datetime, end: datetime) -> float:
    span = (b - a).total_seconds()
    return overlap(a, b, start, end) / span if span > 0 else 0.0


def _binary(ss: Sequence[VersionSamples], ones: str, total: str) -> np.ndarray:
    k = sum(getattr(s, ones) for s in ss)
    n = sum(getattr(s, total) for s in ss)
    return np.concatenate([np.ones(k), np.zeros(n - k)])


def measured_usd(usage: Sequence[VersionUsage], start: datetime,
                 end: datetime) -> float | None:
    """The allocated cost of these partition windows that falls in [start, end); None
    when none overlaps or one that does has no price."""
    inside = [u for u in usage if overlap(u.start, u.end, start, end) > 0]
    if not inside or any(u.allocated_usd is None for u in inside):
        return None
    return sum(u.allocated_usd * _share(u.start, u.end, start, end)  # type: ignore[operator]
               for u in inside)


def cost_per_1k(spec: RolloutSpec, base: Sequence[VersionSamples],
                can: Sequence[VersionSamples], usage: Sequence[VersionUsage],
                start: datetime, end: datetime) -> MetricData:
    """Both versions' cost per 1,000 inferences, measured when both can be, else declared."""
    versions = (spec.baseline_version, spec.canary_version)
    inferences = [sum(s.inferences for s in ss) for ss in (base, can)]
    usd = [measured_usd([u for u in usage if u.version == v], start, end) for v in versions]
    source = "measured"
    if None in usd:
        hours = (end - start).total_seconds() / 3600
        prices = [spec.usd_per_hour.get(v) for v in versions]
        usd = [None if p is None else p * hours for p in prices]
        source = "declared"
    values = [[] if x is None or n <= 0 else [x / (n / 1000)]
              for x, n in zip(usd, inferences, strict=True)]
    return MetricData("point", values[0], values[1], sum(s.records for s in base),
                      sum(s.records for s in can), source=source)


def unhealthy(usage: Sequence[VersionUsage], start: datetime,
              end: datetime) -> tuple[list[float], int]:
    """The share of partition-seconds in [start, end) starved or oversubscribed, and the
    partition-seconds behind it."""
    total = bad = 0.0
    for u in usage:
        sec = overlap(u.start, u.end, start, end)
        total += sec
        bad += sec if u.starved or u.oversubscribed else 0.0
    return ([bad / total] if total > 0 else []), int(total)


def drift_share(verdicts: Sequence[DriftVerdict], start: datetime,
                end: datetime) -> tuple[list[float], int]:
    """The share of drifted columns in the verdicts overlapping [start, end), each weighted
    by how much of its window does, and the rows they judged."""
    drifted = columns = 0.0
    rows = 0
    for v in verdicts:
        w = _share(v.window.start, v.window.end, start, end)
        if w <= 0:
            continue
        judged = getattr(v, v.decided_by) or v.evidently
        drifted += w * len(judged.drifted_columns)
        columns += w * len(judged.columns)
        rows += v.rows
    return ([drifted / columns] if columns > 0 else []), rows


def metric_data(spec: RolloutSpec, base: Sequence[VersionSamples],
                can: Sequence[VersionSamples], start: datetime | None = None,
                end: datetime | None = None, usage: Sequence[VersionUsage] = (),
                verdicts: Sequence[DriftVerdict] = ()) -> dict[str, MetricData]:
    """Each metric's data for the judge. `usage` and `verdicts` are both versions' (the
    canary's at the step's sites only), `start`/`end` the interval (default: the
    buckets' span)."""
    buckets = [*base, *can]
    start = start or min((s.start for s in buckets), default=None)  # type: ignore[assignment]
    end = end or max((s.end for s in buckets), default=None)  # type: ignore[assignment]
    data = {
        "latency_ms": MetricData("samples", [x for s in base for x in s.latency_ms],
                                 [x for s in can for x in s.latency_ms]),
        "error_rate": MetricData("binary", _binary(base, "errors", "records"),
                                 _binary(can, "errors", "records")),
        "accuracy": MetricData("binary", _binary(base, "correct", "labelled"),
                               _binary(can, "correct", "labelled")),
    }
    if start is None or end is None:
        return data
    data["cost_per_1k"] = cost_per_1k(spec, base, can, usage, start, end)
    (hb, nb), (hc, nc) = (unhealthy([u for u in usage if u.version == v], start, end)
                          for v in (spec.baseline_version, spec.canary_version))
    data["partition_unhealthy"] = MetricData("point", hb, hc, nb, nc, difference=True)
    (db, rb), (dc, rc) = (drift_share([x for x in verdicts if x.version == v], start, end)
                          for v in (spec.baseline_version, spec.canary_version))
    data["drift_share"] = MetricData("point", db, dc, rb, rc, difference=True)
    return data
