"""Thin canary latency check: roll a canary back when its p95 latency over an
event-time window exceeds its baseline's by more than a configured factor.

Judged per (model, site): latency is only comparable on the same hardware and
network, and (model, site) is the telemetry key, so one partition holds all it
needs. Windows are tumbling, aligned to the epoch, closed when the key's event
time passes `end + grace` (or, when traffic stops, after `grace` of wall-clock
silence). Records later than that are counted and dropped. A rollback is emitted
once per (model, canary version, site); its id depends only on those, so a
redelivered input, or a later window after a restart, yields the same event id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from processors.latency import UNIT_TO_MS, LatencyAgg, delta_counts
from steward import topics as T
from steward.schema import (
    EventType,
    InferenceRecord,
    LatencyStats,
    MetricPoint,
    ModelRolledBack,
    Window,
    make_event,
)
from steward.stream import Emit, Source

SOURCE = "/steward/processors/canary-latency"
CHECK = "p95_latency_ratio"
SERIES_TTL = timedelta(hours=1)


class CanarySpec(BaseModel):
    """One canary under watch, from config. `site=None` watches every site."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    baseline_version: str
    canary_version: str
    site: str | None = None
    factor: float = Field(1.5, gt=1.0)
    window_s: int = Field(30, ge=1)
    grace_s: float = Field(5.0, ge=0)
    min_samples: int = Field(20, ge=1)
    latency_metric: str = "steward.inference.latency"


WindowKey = tuple[str, str, datetime]  # model, site, window start


@dataclass
class State:
    """One partition's open windows and what has been decided already."""

    windows: dict[WindowKey, dict[str, LatencyAgg]] = field(default_factory=dict)
    watermark: dict[tuple[str, str], datetime] = field(default_factory=dict)
    last_seen: dict[tuple[str, str], datetime] = field(default_factory=dict)
    cumulative: dict[tuple[Any, ...], tuple[list[int], datetime]] = field(default_factory=dict)
    """Last counts of each cumulative histogram series, and when they came (for pruning)."""
    held: dict[WindowKey, dict[str, int]] = field(default_factory=dict)
    """Per open window, the lowest offset per topic of the records in it."""
    fired: set[tuple[str, str, str]] = field(default_factory=set)
    late: int = 0


class CanaryLatency:
    """The processor: inference records and latency metric points in, rollbacks out."""

    name = "canary-latency"
    inputs = (T.INFERENCE, T.METRICS)

    def __init__(self, specs: list[CanarySpec]) -> None:
        self.specs = specs

    def initial_state(self) -> State:
        return State()

    def _spec(self, model: str, version: str, site: str) -> CanarySpec | None:
        for s in self.specs:
            if s.model == model and version in (s.baseline_version, s.canary_version) \
                    and s.site in (None, site):
                return s
        return None

    def hold(self, state: State) -> dict[str, int]:
        """The lowest offset per topic that an open window still needs."""
        low: dict[str, int] = {}
        for offsets in state.held.values():
            for topic, offset in offsets.items():
                low[topic] = min(offset, low.get(topic, offset))
        return low

    def step(self, state: State, record: Any, now: datetime,
             src: Source) -> tuple[State, list[Emit]]:
        spec = self._spec(record.model, record.version, record.site)
        if spec is None:
            return state, []
        if isinstance(record, InferenceRecord):
            observe = _sample(record.latency_ms)
        elif isinstance(record, MetricPoint) and record.name == spec.latency_metric:
            observe = _metric_observer(state, record, now)
            if observe is None:
                return state, []
        else:
            return state, []
        key = (record.model, record.site)
        start = _window_start(record.ts, spec.window_s)
        if start + timedelta(seconds=spec.window_s + spec.grace_s) <= state.watermark.get(
                key, start):
            state.late += 1
            return state, []
        wkey = (*key, start)
        observe(state.windows.setdefault(wkey, {}).setdefault(record.version, LatencyAgg()))
        held = state.held.setdefault(wkey, {})
        held.setdefault(src.topic, src.offset)  # records arrive in offset order: first is lowest
        state.watermark[key] = max(record.ts, state.watermark.get(key, record.ts))
        state.last_seen[key] = now
        return state, self._close(state, lambda k: state.watermark[k], only=key)

    def tick(self, state: State, now: datetime) -> tuple[State, list[Emit]]:
        """Close windows of keys that went quiet: wall-clock silence of `grace` past the end.
        Also forget cumulative series not seen for `SERIES_TTL` (their senders are gone)."""
        for series, (_, seen) in list(state.cumulative.items()):
            if now - seen > SERIES_TTL:
                del state.cumulative[series]
        def quiet_until(key: tuple[str, str]) -> datetime | None:
            spec = self._spec_for_key(state, key)
            seen = state.last_seen.get(key)
            if spec is None or seen is None or (now - seen).total_seconds() < spec.grace_s:
                return None
            return now
        return state, self._close(state, quiet_until)

    def _spec_for_key(self, state: State, key: tuple[str, str]) -> CanarySpec | None:
        for model, site, _ in state.windows:
            if (model, site) == key:
                for s in self.specs:
                    if s.model == model and s.site in (None, site):
                        return s
        return None

    def _close(self, state: State, clock: Any, only: tuple[str, str] | None = None) -> list[Emit]:
        emits: list[Emit] = []
        for wkey in sorted(state.windows, key=lambda k: k[2]):
            model, site, start = wkey
            if only is not None and (model, site) != only:
                continue
            until = clock((model, site))
            spec = self._spec_for_key(state, (model, site))
            if until is None or spec is None:
                continue
            end = start + timedelta(seconds=spec.window_s)
            if end + timedelta(seconds=spec.grace_s) > until:
                continue
            aggs = state.windows.pop(wkey)
            state.held.pop(wkey, None)
            emit = self._judge(state, spec, site, Window(start=start, end=end), aggs)
            if emit is not None:
                emits.append(emit)
        return emits

    def _judge(self, state: State, spec: CanarySpec, site: str, window: Window,
               aggs: dict[str, LatencyAgg]) -> Emit | None:
        base, can = aggs.get(spec.baseline_version), aggs.get(spec.canary_version)
        if base is None or can is None or min(base.count, can.count) < spec.min_samples:
            return None
        fired_key = (spec.model, spec.canary_version, site)
        b95, c95 = base.p95(), can.p95()
        ratio = c95 / b95 if b95 > 0 else (1.0 if c95 == 0 else float("inf"))
        if ratio <= spec.factor or fired_key in state.fired:
            return None
        state.fired.add(fired_key)
        data = ModelRolledBack(
            model=spec.model, site=site, canary_version=spec.canary_version,
            baseline_version=spec.baseline_version, check=CHECK,
            reason=(f"canary p95 {c95:.1f} ms is {ratio:.2f}x baseline p95 {b95:.1f} ms "
                    f"(limit {spec.factor}x)"),
            window=window,
            baseline=LatencyStats(version=spec.baseline_version, count=base.count,
                                  p95_ms=b95, method=base.method),
            canary=LatencyStats(version=spec.canary_version, count=can.count, p95_ms=c95,
                                method=can.method),
            ratio=min(ratio, 1e12), threshold=spec.factor, min_samples=spec.min_samples,
        )
        event = make_event(
            EventType.MODEL_ROLLED_BACK, source=SOURCE, subject=f"{spec.model}/{site}",
            data=data, key=spec.model, time=window.end, facts=fired_key,
        )
        return Emit(T.ACTIONS, event)


def _window_start(ts: datetime, window_s: int) -> datetime:
    epoch = int(ts.timestamp())
    return datetime.fromtimestamp(epoch - epoch % window_s, UTC)


def _sample(ms: float) -> Any:
    return lambda agg: agg.add_sample(ms)


def _metric_observer(state: State, point: MetricPoint, now: datetime) -> Any:
    """How a latency metric point adds to a window (None: nothing to add)."""
    scale = UNIT_TO_MS.get(point.unit)
    if scale is None:
        return None
    if point.kind == "gauge" and point.value is not None:
        return _sample(point.value * scale)
    if point.kind != "histogram" or point.histogram is None:
        return None
    h = point.histogram
    counts = list(h.counts)
    if point.temporality == "cumulative":
        series = (point.name, point.model, point.version, point.site, point.node,
                  tuple(sorted(point.attributes.items(), key=str)), point.start_ts)
        prev = state.cumulative.get(series)
        counts, state.cumulative[series] = delta_counts(prev and prev[0], counts), (counts, now)
    bounds = tuple(b * scale for b in h.bounds)
    return lambda agg: agg.add_histogram(bounds, counts)
