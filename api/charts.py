"""Live charts without Grafana: the API samples its own Prometheus registry every few
seconds into a bounded ring buffer, and the built-in page (GET /ui) draws the buffer.

The charts read the very metric families the Grafana dashboards query (dashboards/json),
aggregated the same way, so the page and Grafana never disagree about what a signal is.
Sampling in-process keeps `make run` free of a time-series database: a restart starts
the charts afresh, which is fine for a look at a running demo or an edge box; history
belongs to Prometheus.
"""

from __future__ import annotations

import logging
import operator
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from api.ui_schemas import ChartOut, ChartsOut, SeriesOut

log = logging.getLogger(__name__)

Samples = Mapping[str, list[tuple[dict[str, str], float]]]
"""A registry's samples by sample name (a counter's carry `_total`): (labels, value)."""

ONLINE_S = 300.0
"""A site is online when heard from this recently (the Fleet dashboard's 'Sites online')."""
MAX_SERIES = 10
_TOPIC = re.compile(r"^(?:.*?\.)??steward\.(.+?)(?:\.v\d+)?$")


def summed(samples: Samples, metric: str, by: Iterable[str],
           keep: Callable[[dict[str, str]], bool] = lambda _: True,
           combine: Callable[[float, float], float] = operator.add) -> dict[str, float]:
    """`sum by (labels) (metric)` over the samples `keep` accepts (`combine=max`: `max by`);
    a series is named by its label values joined with spaces."""
    by = tuple(by)
    out: dict[str, float] = {}
    for labels, value in samples.get(metric, ()):
        if keep(labels):
            name = " ".join(labels.get(k, "") for k in by).strip() or metric
            out[name] = combine(out[name], value) if name in out else value
    return out


@dataclass(frozen=True)
class Chart:
    """One chart: how to read its series from one sample of the registry. `rate` charts
    are counters, drawn as the per-second increase between two samples."""

    id: str
    title: str
    unit: str
    dashboard: str
    metrics: tuple[str, ...]
    read: Callable[[Samples, float], dict[str, float]]
    kind: str = "line"
    rate: bool = False


def _ingest(s: Samples, _now: float) -> dict[str, float]:
    """Records the API's sinks took in (the only stages in the API's registry), by topic,
    named without the deployment prefix and version (`t1.steward.telemetry.inference.v1`
    -> `telemetry.inference`): what reached the store."""
    out: dict[str, float] = {}
    for topic, n in summed(s, "steward_stream_records_total", ("topic",)).items():
        name = _TOPIC.sub(r"\1", topic)
        out[name] = out.get(name, 0.0) + n
    return out


def _sites_online(s: Samples, now: float) -> dict[str, float]:
    seen = s.get("steward_site_last_seen_timestamp_seconds", ())
    return {"online": float(sum(1 for _, ts in seen if now - ts < ONLINE_S))} if seen else {}


def _use_vs_promise(s: Samples, _now: float) -> dict[str, float]:
    use = summed(s, "steward_gpu_partition_compute_card_use_ratio", ("profile",))
    promise = summed(s, "steward_gpu_partition_promised_compute_ratio", ("profile",))
    return {**{f"{p} use": v for p, v in use.items()},
            **{f"{p} promise": v for p, v in promise.items()}}


def _decisions(s: Samples, _now: float) -> dict[str, float]:
    by_result = summed(s, "steward_governance_decisions", ("allowed",))
    return {{"true": "allowed", "false": "denied"}.get(k, k): v for k, v in by_result.items()}


def _is_rollout(labels: dict[str, str]) -> bool:
    return labels.get("type", "").startswith(("steward.model.", "steward.rollout."))


CHARTS: tuple[Chart, ...] = (
    Chart("ingest", "Records taken in per second, by topic", "records/s", "Fleet overview",
          ("steward_stream_records_total",),
          _ingest, rate=True),
    Chart("sites", "Sites online (heard from in the last 5 min)", "sites", "Fleet overview",
          ("steward_site_last_seen_timestamp_seconds",), _sites_online),
    Chart("drift", "Share of drifted columns, latest window", "share", "Drift",
          ("steward_drift_share_ratio",),
          lambda s, _: summed(s, "steward_drift_share_ratio", ("model", "version", "site"))),
    Chart("gpu", "GPU use vs promise per MIG profile", "share of card", "GPU partitions",
          ("steward_gpu_partition_compute_card_use_ratio",
           "steward_gpu_partition_promised_compute_ratio"), _use_vs_promise),
    Chart("cost", "GPU cost over the trailing period, by kind", "USD", "Cost",
          ("steward_gpu_cost_usd",), lambda s, _: summed(s, "steward_gpu_cost_usd", ("kind",))),
    Chart("rollouts", "Promotions, rollbacks and rollout steps", "events stored", "Rollouts",
          ("steward_events",), lambda s, _: summed(s, "steward_events", ("type",), _is_rollout)),
    Chart("rollout-score", "Rollout score of the last analysis run", "score (0-100)",
          "Rollouts", ("steward_rollout_score",),
          lambda s, _: summed(s, "steward_rollout_score", ("rollout_id",), combine=max)),
    Chart("governance", "Governance decisions by result", "decisions", "Governance",
          ("steward_governance_decisions",), _decisions),
    Chart("denials", "Deny reasons by policy, now", "reasons", "Governance",
          ("steward_governance_denials",),
          lambda s, _: summed(s, "steward_governance_denials", ("rule",)), kind="bar"),
)
"""The page's charts, in page order: the signals of the six Grafana dashboards."""


def collect(registry: Collector) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every sample the registry yields now, by sample name (runs every collector)."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in registry.collect():
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


class Charted(Collector):
    """What the sampler reads: only the collectors behind the charted families. /metrics
    runs every collector (some query DuckDB at length); the sampler, every few seconds,
    runs just `registry`'s own metrics of those families (prometheus_client's restricted
    view collects only them) and the custom `collectors` that yield them."""

    def __init__(self, registry: CollectorRegistry, collectors: Iterable[Any] = (),
                 charts: tuple[Chart, ...] = CHARTS) -> None:
        self.view = registry.restricted_registry([m for c in charts for m in c.metrics])
        self.collectors = tuple(collectors)

    def collect(self) -> Iterator[Metric]:
        yield from self.view.collect()
        for collector in self.collectors:
            yield from collector.collect()


class ChartSampler:
    """Samples `registry` (a registry, or a `Charted` view of one) into a ring buffer of
    the last `points` samples, one per call of `sample()` (`run()` calls it every
    `interval_s` until stopped). `clock` stamps the samples and is the 'now' of
    time-based signals (sites online)."""

    def __init__(self, registry: Collector, clock: Callable[[], datetime], *,
                 interval_s: float = 5.0, points: int = 360,
                 charts: tuple[Chart, ...] = CHARTS) -> None:
        self.registry = registry
        self.clock = clock
        self.interval_s = interval_s
        self.charts = charts
        self.buffer: deque[tuple[float, dict[str, dict[str, float]]]] = deque(maxlen=points)
        self.failed = 0
        self._counters: tuple[float, dict[str, dict[str, float]]] | None = None
        self._lock = threading.Lock()

    def sample(self) -> None:
        """Read every chart's series from the registry now and append them."""
        now = self.clock().timestamp()
        samples = collect(self.registry)
        raw = {c.id: c.read(samples, now) for c in self.charts}
        with self._lock:
            previous, self._counters = self._counters, (now, raw)
            point = {c.id: self._rate(c.id, now, raw[c.id], previous) if c.rate else raw[c.id]
                     for c in self.charts}
            self.buffer.append((now, point))

    @staticmethod
    def _rate(chart: str, now: float, values: dict[str, float],
              previous: tuple[float, dict[str, dict[str, float]]] | None) -> dict[str, float]:
        """Per-second increase since the previous sample. A counter absent then was 0 (its
        labels appear on the first increment); one that went down restarted from 0."""
        if previous is None or now <= previous[0]:
            return {}
        before, dt = previous[1].get(chart, {}), now - previous[0]
        return {k: (v - before.get(k, 0.0) if v >= before.get(k, 0.0) else v) / dt
                for k, v in values.items()}

    def run(self, stop: threading.Event) -> None:
        """Sample now and then every `interval_s` until `stop` is set. A failed sample is
        a gap in the charts (logged and counted), never the end of the sampler."""
        while True:
            try:
                self.sample()
            except Exception:  # a store hiccup must not end the charts
                self.failed += 1
                log.exception("chart sample failed (%d so far)", self.failed)
            if stop.wait(self.interval_s):
                return

    def snapshot(self) -> ChartsOut:
        """The buffer as the page draws it: each chart's series aligned on the times."""
        with self._lock:
            points = list(self.buffer)
        times = [t for t, _ in points]
        return ChartsOut(interval_s=self.interval_s, times=times, failed_samples=self.failed,
                         charts=[self._chart(c, [p[c.id] for _, p in points])
                                 for c in self.charts])

    @staticmethod
    def _chart(chart: Chart, points: list[dict[str, float]]) -> ChartOut:
        names = sorted({name for p in points for name in p})
        shown = names[:MAX_SERIES]
        return ChartOut(id=chart.id, title=chart.title, unit=chart.unit, kind=chart.kind,
                        dashboard=chart.dashboard, metrics=list(chart.metrics),
                        hidden=len(names) - len(shown),
                        series=[SeriesOut(name=n, values=[p.get(n) for p in points])
                                for n in shown])
