"""Drift judge: inference records and edge profiles in, one verdict per window out.

Records are windowed by event time (tumbling, `window_s`, with `grace_s` for late ones)
per (model, version, site). An edge profile covers one such window already and joins
it: profiles of several nodes merge, raw rows of the same window are profiled and
merged too, and the verdict says it came from a profile. A record or profile seen twice
(a retry upstream) counts once. A window with fewer than `min_rows` rows gets no
verdict (counted): 8 rows say nothing. A window keeps at most `max_rows` raw rows (the
first ones; the rest are counted), which bounds memory and judging cost per window.

Verdicts go to the verdict topic keyed by model, where the retraining trigger debounces
them across windows and sites. Data-quality findings (a column the reference never had,
one that went missing or non-numeric) become `steward.data_quality` alerts, once per
(model, version, site, problem).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from processors.drift.models import CalibratedParams, Judged
from processors.drift.panes import Pane, Panes
from processors.references import Lookup, ReferenceData
from processors.windows import Windows
from steward import topics as T
from steward.errors import InvalidInput
from steward.profiles import merge
from steward.schema import EventType, InferenceRecord, Window, event_id, make_event
from steward.schema.drift import (
    DataQualityAlert,
    DriftVerdict,
    QualityFinding,
)
from steward.schema.profile import FeatureProfile, TimeWindow
from steward.stream import Emit, Source

SOURCE = "/steward/processors/drift-judge"
ALERT_CODES = frozenset({
    "unknown_in_current", "missing_in_current", "empty_in_current", "not_numeric",
    "infinite_values", "missing_in_reference", "empty_in_reference", "stattest_failed",
    "profile_truncated"})
"""Finding codes that are data-quality problems worth an alert (not sampling notes)."""


class DriftSpec(BaseModel):
    """Windowing and decision settings of the drift judge."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    window_s: int = Field(300, ge=1)
    grace_s: float = Field(30.0, ge=0)
    min_rows: int = Field(50, ge=1)
    max_rows: int = Field(10_000, ge=1)
    method: Literal["evidently", "calibrated"] = "calibrated"
    """Which judgement decides `drift`, the one triggers count. Both are computed and
    kept on every verdict; Evidently's defaults raise false alarms on stationary data
    (docs/drift.md), so triggers follow the calibrated one unless told otherwise."""
    slide_s: int | None = Field(None, ge=1)
    """Sliding windows: judge the last `window_s` every `slide_s` (which must divide it);
    None: tumbling. Edge agents then profile `slide_s` panes."""
    calibrated: CalibratedParams = Field(default_factory=CalibratedParams)
    """Steward's calibrated verdict, e.g. STEWARD_DRIFT__CALIBRATED__ALPHA=0.01."""

    @model_validator(mode="after")
    def _slide_divides(self) -> DriftSpec:
        if self.slide_s is not None and (self.slide_s >= self.window_s
                                         or self.window_s % self.slide_s):
            raise ValueError(f"slide_s ({self.slide_s}) must be smaller than window_s "
                             f"({self.window_s}) and divide it")
        return self


class Judge(Protocol):
    """Judges windows against a reference, from raw rows or from a profile."""

    def __call__(self, ref: ReferenceData, rows: list[dict[str, Any]]) -> Judged: ...

    def profile(self, ref: ReferenceData, profile: FeatureProfile,
                rows: list[dict[str, Any]]) -> Judged: ...

    def spec_id(self, ref: ReferenceData) -> str: ...


@dataclass
class Rows:
    rows: list[dict[str, Any]] = field(default_factory=list)
    dropped: int = 0
    profile: FeatureProfile | None = None
    ids: set[str] = field(default_factory=set)
    first: dict[str, int] = field(default_factory=dict)


@dataclass
class State:
    windows: Windows[Rows]
    panes: Panes | None = None
    unreferenced: dict[tuple[str, str], int] = field(default_factory=dict)
    too_small: int = 0
    duplicates: int = 0
    reported: set[tuple[str, ...]] = field(default_factory=set)


class DriftJudge:
    name = "drift-judge"
    inputs = (T.INFERENCE, T.PROFILES)

    def __init__(self, spec: DriftSpec, references: Lookup, judge: Judge) -> None:
        self.spec = spec
        self.references = references
        self.judge = judge

    @property
    def pane_s(self) -> int:
        """What records are collected in: the window, or its slide."""
        return self.spec.slide_s or self.spec.window_s

    def initial_state(self) -> State:
        panes = Panes(self.spec.window_s, self.pane_s) if self.spec.slide_s else None
        return State(Windows(self.pane_s, self.spec.grace_s), panes)

    def hold(self, state: State) -> dict[str, int]:
        return state.windows.hold(state.panes.hold() if state.panes else None)

    def step(self, state: State, record: Any, now: datetime,
             src: Source) -> tuple[State, list[Emit]]:
        if isinstance(record, FeatureProfile):
            return self._add_profile(state, record, now, src)
        if not isinstance(record, InferenceRecord) or record.profiled:
            return state, []
        ref = self._reference(state, record.model, record.version)
        if ref is None:
            return state, []
        wkey = (record.model, record.version, record.site)
        rows = state.windows.add(wkey, record.ts, src, now, Rows)
        if rows is not None:
            rows.first.setdefault(src.topic, src.offset)
            if record.id in rows.ids:
                state.duplicates += 1
            elif len(rows.rows) < self.spec.max_rows:
                rows.ids.add(record.id)
                rows.rows.append(window_row(record.features, record.prediction, ref.prediction))
            else:
                rows.dropped += 1
        return state, self._verdicts(state, state.windows.close_by_watermark(wkey))

    def _reference(self, state: State, model: str, version: str) -> ReferenceData | None:
        ref = self.references(model, version)
        if ref is None:
            state.unreferenced[(model, version)] = state.unreferenced.get((model, version), 0) + 1
        return ref

    def _add_profile(self, state: State, profile: FeatureProfile, now: datetime,
                     src: Source) -> tuple[State, list[Emit]]:
        """A profile joins its window; one that cannot is rejected (dead-lettered) before
        anything changes."""
        ref = self._reference(state, profile.model, profile.version)
        if ref is None:
            return state, []
        self._check(profile, ref, state.windows)
        wkey = (profile.model, profile.version, profile.site)
        last = profile.window.end - timedelta(microseconds=1)
        rows = state.windows.add(wkey, last, src, now, Rows)
        if rows is not None:
            rows.first.setdefault(src.topic, src.offset)
            if profile.id in rows.ids:
                state.duplicates += 1
            else:
                rows.ids.add(profile.id)
                rows.profile = profile if rows.profile is None else merge(rows.profile, profile)
        return state, self._verdicts(state, state.windows.close_by_watermark(wkey))

    def _check(self, profile: FeatureProfile, ref: ReferenceData, windows: Windows) -> None:
        start, end = profile.window.start, profile.window.end
        if windows.start_of(start) != start or (end - start).total_seconds() != self.pane_s:
            raise InvalidInput(f"profile window {start.isoformat()}..{end.isoformat()} is not "
                               f"one of this judge's {self.pane_s}s windows")
        expected = self.judge.spec_id(ref)
        if profile.spec_id != expected:
            raise InvalidInput(f"profile built to spec {profile.spec_id[:12]}, the reference "
                               f"of {ref.model} {ref.version} now gives {expected[:12]}: "
                               "fetch the profile spec again")

    def tick(self, state: State, now: datetime) -> tuple[State, list[Emit]]:
        emits = self._verdicts(state, state.windows.close_quiet(now))
        if state.panes is not None:  # after closing: a key quiet this long needs no pane
            state.panes.forget(state.windows.last_seen, now,
                               self.spec.window_s + self.spec.grace_s)
        return state, emits

    def _windows(self, state: State, closed: list[Any]) -> list[tuple[Any, Window, Rows]]:
        """Closed panes as the windows to judge: each pane (tumbling), or the sliding
        window that ends with it, its panes' rows and profiles together."""
        if state.panes is None:
            return [(key, Window(start=start, end=end), rows)
                    for key, start, end, rows in closed]
        out = []
        for key, start, end, rows in closed:
            panes = state.panes.push(key, Pane(start, end, rows, rows.first))
            window = Window(start=end - timedelta(seconds=self.spec.window_s), end=end,
                            kind="sliding")
            out.append((key, window, _together([p.rows for p in panes], window)))
        return out

    def _verdicts(self, state: State, closed: list[Any]) -> list[Emit]:
        emits = []
        for (model, version, site), window, rows in self._windows(state, closed):
            ref = self.references(model, version)
            total = len(rows.rows) + (rows.profile.rows if rows.profile else 0)
            if ref is None or total < self.spec.min_rows:
                state.too_small += 1
                continue
            if rows.profile is not None:
                judged = self.judge.profile(ref, rows.profile, rows.rows)
            else:
                judged = self.judge(ref, rows.rows)
            verdict = self._verdict(model, version, site, window, total, rows, judged)
            emits.append(Emit(T.DRIFT_VERDICTS, record=verdict, key=model))
            emits.extend(self._alerts(state, verdict, judged.findings))
        return emits

    def _verdict(self, model: str, version: str, site: str, window: Window, total: int,
                 rows: Rows, judged: Judged) -> DriftVerdict:
        decided = judged.calibrated if self.spec.method == "calibrated" and \
            judged.calibrated is not None else judged.evidently
        capped = [f"window capped at {self.spec.max_rows} rows; {rows.dropped} not judged"] \
            if rows.dropped else []
        return DriftVerdict(
            id=event_id("steward.drift.verdict", model, version, site, window.start.isoformat()),
            model=model, version=version, site=site, window=window, rows=total,
            source="profile" if rows.profile is not None else "raw",
            evidently=judged.evidently, calibrated=judged.calibrated,
            decided_by=decided.method, drift=decided.dataset_drift,
            prediction=judged.prediction,
            findings=[_text(f) for f in judged.findings] + capped)

    def _alerts(self, state: State, verdict: DriftVerdict,
                findings: tuple[QualityFinding, ...]) -> list[Emit]:
        """One alert per verdict for the data-quality problems not reported before."""
        new = []
        for f in findings:
            fact = (verdict.model, verdict.version, verdict.site, f.code, f.column or "")
            if f.code in ALERT_CODES and fact not in state.reported:
                state.reported.add(fact)
                new.append(f)
        if not new:
            return []
        data = DataQualityAlert(model=verdict.model, version=verdict.version, site=verdict.site,
                                window=verdict.window, verdict_id=verdict.id, findings=new)
        facts = (verdict.model, verdict.version, verdict.site,
                 *sorted(f"{f.code}:{f.column}" for f in new))
        event = make_event(EventType.DATA_QUALITY, source=SOURCE,
                           subject=f"{verdict.model}/{verdict.version}/{verdict.site}",
                           data=data, key=verdict.model, time=verdict.window.end, facts=facts)
        return [Emit(T.ALERTS, event)]


def _together(panes: list[Rows], window: Window) -> Rows:
    """The rows and the merged profile of several panes, as one window's."""
    out = Rows()
    for pane in panes:
        out.rows += pane.rows
        out.dropped += pane.dropped
        if pane.profile is not None:
            profile = pane.profile.model_copy(update={"window": TimeWindow(
                start=window.start, end=window.end)})
            out.profile = profile if out.profile is None else merge(out.profile, profile)
    return out


def _text(f: QualityFinding) -> str:
    return f"{f.code}: {f.column}: {f.message}" if f.column else f"{f.code}: {f.message}"


def window_row(features: dict[str, Any], prediction: Any,
               prediction_column: str | None) -> dict[str, Any]:
    """A record as a row of the reference's table: its features, and its prediction under
    the reference's prediction column."""
    row = dict(features)
    if prediction_column is not None:
        row[prediction_column] = prediction
    return row
