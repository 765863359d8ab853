"""Thin canary latency check: roll a canary back when its p95 latency over an
event-time window exceeds its baseline's by more than a configured factor.

Judged per (model, site): latency is only comparable on the same hardware and
network, and (model, site) is the telemetry key, so one partition holds all it
needs. Windows are tumbling, aligned to the epoch, closed when the key's event
time passes `end + grace` (or, when traffic stops, after `grace` of wall-clock
silence). Records later than that are counted and dropped. A rollback is emitted
once per (model, canary version, site); its id depends only on those, so a
redelivered input, or a later window after a restart, yields the same event id.

A spec with `early` also judges the open window as its records arrive, so a rollback
need not wait for the window to close; the look depends only on the window's contents
in record order, so a replay looks (and fires) at the same record again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from processors.latency import UNIT_TO_MS, LatencyAgg, delta_counts
from processors.windows import Windows, held_back
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
    early: bool = False
    """Judge the open window as records arrive: a rollback fires as soon as both versions
    have `min_samples` in the window and the canary's p95 already exceeds `factor` x the
    baseline's; the window's closing judgement then finds it fired. Looking many times
    raises the false-alarm rate, so pair it with a higher `min_samples`. (Looks after the
    first are spaced out: `CanaryLatency._look_early`.)"""


class Versions(dict[str, LatencyAgg]):
    """One window's aggregates by version, and how many records of the spec's two
    versions it held at its last early look (0: none yet)."""

    looked: int = 0


@dataclass
class State:
    """One partition's open windows (per canary spec) and what has been decided already."""

    windows: dict[int, Windows[Versions]] = field(default_factory=dict)
    """By index of the spec in the processor's list; keys are (model, site)."""
    cumulative: dict[tuple[Any, ...], tuple[list[int], datetime]] = field(default_factory=dict)
    """Last counts of each cumulative histogram series, and when they came (for pruning)."""
    fired: set[tuple[str, str, str]] = field(default_factory=set)

    @property
    def late(self) -> int:
        return sum(w.late for w in self.windows.values())


class CanaryLatency:
    """The processor: inference records and latency metric points in, rollbacks out."""

    name = "canary-latency"
    inputs = (T.INFERENCE, T.METRICS)

    def __init__(self, specs: list[CanarySpec]) -> None:
        self.specs = specs

    def initial_state(self) -> State:
        return State()

    def _spec(self, model: str, version: str, site: str) -> int | None:
        for i, s in enumerate(self.specs):
            if s.model == model and version in (s.baseline_version, s.canary_version) \
                    and s.site in (None, site):
                return i
        return None

    def accepts(self, topic: T.Topic, key: bytes | None) -> bool:
        """Whether a message with this Kafka key (model/site) may hold a record some spec
        watches: the runner does not even decode the others (most of the traffic: canaries
        are few). A key that is not model/site is decoded, and judged on its records."""
        model, sep, site = (key or b"").decode("utf-8", "replace").partition("/")
        if not sep:
            return True
        return any(s.model == model and s.site in (None, site) for s in self.specs)

    def hold(self, state: State) -> dict[str, int]:
        """The lowest offset per topic that an open window still needs (and no closed one
        is replayed in part), over every spec's windows at once."""
        return held_back(state.windows.values())

    def step(self, state: State, record: Any, now: datetime,
             src: Source) -> tuple[State, list[Emit]]:
        index = self._spec(record.model, record.version, record.site)
        if index is None:
            return state, []
        spec = self.specs[index]
        if isinstance(record, InferenceRecord):
            observe = _sample(record.latency_ms)
        elif isinstance(record, MetricPoint) and record.name == spec.latency_metric:
            observe = _metric_observer(state, record, now)
            if observe is None:
                return state, []
        else:
            return state, []
        windows = state.windows.setdefault(index, Windows(spec.window_s, spec.grace_s))
        key = (record.model, record.site)
        aggs = windows.add(key, record.ts, src, now, Versions)
        if aggs is None:
            return state, []
        observe(aggs.setdefault(record.version, LatencyAgg()))
        emits = self._judge_all(state, spec, windows.close_by_watermark(key))
        if spec.early:
            emits += self._look_early(state, spec, windows, key, record.ts, aggs)
        return state, emits

    def tick(self, state: State, now: datetime) -> tuple[State, list[Emit]]:
        """Close windows of keys that went quiet: wall-clock silence of `grace` past the end.
        Also forget cumulative series not seen for `SERIES_TTL` (their senders are gone)."""
        for series, (_, seen) in list(state.cumulative.items()):
            if now - seen > SERIES_TTL:
                del state.cumulative[series]
        emits: list[Emit] = []
        for index, windows in state.windows.items():
            emits += self._judge_all(state, self.specs[index], windows.close_quiet(now))
        return state, emits

    def _judge_all(self, state: State, spec: CanarySpec, closed: list[Any]) -> list[Emit]:
        emits = []
        for (_, site), start, end, aggs in closed:
            emit = self._judge(state, spec, site, Window(start=start, end=end), aggs)
            if emit is not None:
                emits.append(emit)
        return emits

    def _look_early(self, state: State, spec: CanarySpec, windows: Windows[Versions],
                    key: tuple[str, str], ts: datetime, aggs: Versions) -> list[Emit]:
        """Judge the open window `ts` fell in on its records so far (`CanarySpec.early`).

        The first look comes with the record that gives both versions `min_samples`; the
        next only once the two counts together grew by max(1, min_samples // 4, an eighth
        of the last look's): each look sorts the window for its p95, so looking at every
        record would cost O(n^2 log n) over a window of n, this a logarithmic number of
        looks once the window is big, a decision late by at most that many records."""
        if (spec.model, spec.canary_version, key[1]) in state.fired:
            return []
        base, can = aggs.get(spec.baseline_version), aggs.get(spec.canary_version)
        if base is None or can is None or min(base.count, can.count) < spec.min_samples:
            return []
        total = base.count + can.count
        if aggs.looked and total < aggs.looked + max(1, spec.min_samples // 4,
                                                      aggs.looked // 8):
            return []
        aggs.looked = total
        start = windows.start_of(ts)
        window = Window(start=start, end=start + timedelta(seconds=spec.window_s))
        at = min(window.end, windows.watermark[key])  # event time of the decision
        emit = self._judge(state, spec, key[1], window, aggs, early_at=at)
        return [] if emit is None else [emit]

    def _judge(self, state: State, spec: CanarySpec, site: str, window: Window,
               aggs: dict[str, LatencyAgg], early_at: datetime | None = None) -> Emit | None:
        """The rollback, if the window's canary p95 exceeds `factor` x the baseline's and
        none went out for (model, canary, site); `early_at`: judged before the window
        closed, at that event time, on the records so far."""
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
                    f"(limit {spec.factor}x)"
                    + ("; judged before the window closed" if early_at else "")),
            window=window,
            baseline=LatencyStats(version=spec.baseline_version, count=base.count,
                                  p95_ms=b95, method=base.method),
            canary=LatencyStats(version=spec.canary_version, count=can.count, p95_ms=c95,
                                method=can.method),
            ratio=min(ratio, 1e12), threshold=spec.factor, min_samples=spec.min_samples,
            early=early_at is not None,
        )
        event = make_event(
            EventType.MODEL_ROLLED_BACK, source=SOURCE, subject=f"{spec.model}/{site}",
            data=data, key=spec.model, time=early_at or window.end, facts=fired_key,
        )
        return Emit(T.PROPOSALS, event)


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
