"""Drift judge: inference records in, one drift verdict per (model, version, site) window out.

Records are windowed by event time (tumbling, `window_s`, with `grace_s` for late ones).
A window with fewer than `min_rows` rows gets no verdict (counted): 8 rows say nothing.
A window keeps at most `max_rows` rows (the first ones; the rest are counted), which
bounds memory and judging cost per window. Verdicts go to the verdict topic keyed by
model, where the retraining trigger debounces them across windows and sites.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from processors.drift.models import CalibratedParams
from processors.references import Lookup, ReferenceData
from processors.windows import Windows
from steward import topics as T
from steward.schema import InferenceRecord, Window, event_id
from steward.schema.drift import ColumnDrift, DatasetDrift, DriftVerdict
from steward.stream import Emit, Source


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
    calibrated: CalibratedParams = Field(default_factory=CalibratedParams)
    """Steward's calibrated verdict, e.g. STEWARD_DRIFT__CALIBRATED__ALPHA=0.01."""


@dataclass(frozen=True)
class Judged:
    """What a judge function returns for one window."""

    evidently: DatasetDrift
    calibrated: DatasetDrift | None = None
    prediction: ColumnDrift | None = None
    findings: tuple[str, ...] = ()


Judge = Callable[[ReferenceData, list[dict[str, Any]]], Judged]


@dataclass
class Rows:
    rows: list[dict[str, Any]] = field(default_factory=list)
    dropped: int = 0


@dataclass
class State:
    windows: Windows[Rows]
    unreferenced: dict[tuple[str, str], int] = field(default_factory=dict)
    too_small: int = 0


class DriftJudge:
    name = "drift-judge"
    inputs = (T.INFERENCE,)

    def __init__(self, spec: DriftSpec, references: Lookup, judge: Judge) -> None:
        self.spec = spec
        self.references = references
        self.judge = judge

    def initial_state(self) -> State:
        return State(Windows(self.spec.window_s, self.spec.grace_s))

    def hold(self, state: State) -> dict[str, int]:
        return state.windows.hold()

    def step(self, state: State, record: Any, now: datetime,
             src: Source) -> tuple[State, list[Emit]]:
        if not isinstance(record, InferenceRecord):
            return state, []
        ref = self.references(record.model, record.version)
        if ref is None:
            key = (record.model, record.version)
            state.unreferenced[key] = state.unreferenced.get(key, 0) + 1
            return state, []
        wkey = (record.model, record.version, record.site)
        rows = state.windows.add(wkey, record.ts, src, now, Rows)
        if rows is not None:
            if len(rows.rows) < self.spec.max_rows:
                rows.rows.append(window_row(record.features, record.prediction, ref.prediction))
            else:
                rows.dropped += 1
        return state, self._verdicts(state, state.windows.close_by_watermark(wkey))

    def tick(self, state: State, now: datetime) -> tuple[State, list[Emit]]:
        return state, self._verdicts(state, state.windows.close_quiet(now))

    def _verdicts(self, state: State, closed: list[Any]) -> list[Emit]:
        emits = []
        for (model, version, site), start, end, rows in closed:
            ref = self.references(model, version)
            if ref is None or len(rows.rows) < self.spec.min_rows:
                state.too_small += 1
                continue
            judged = self.judge(ref, rows.rows)
            decided = judged.calibrated if self.spec.method == "calibrated" and \
                judged.calibrated is not None else judged.evidently
            verdict = DriftVerdict(
                id=event_id("steward.drift.verdict", model, version, site, start.isoformat()),
                model=model, version=version, site=site, window=Window(start=start, end=end),
                rows=len(rows.rows), evidently=judged.evidently, calibrated=judged.calibrated,
                decided_by=decided.method, drift=decided.dataset_drift,
                prediction=judged.prediction, findings=list(judged.findings)
                + ([f"window capped at {self.spec.max_rows} rows; {rows.dropped} not judged"]
                   if rows.dropped else []))
            emits.append(Emit(T.DRIFT_VERDICTS, record=verdict, key=model))
        return emits


def window_row(features: dict[str, Any], prediction: Any,
               prediction_column: str | None) -> dict[str, Any]:
    """A record as a row of the reference's table: its features, and its prediction under
    the reference's prediction column."""
    row = dict(features)
    if prediction_column is not None:
        row[prediction_column] = prediction
    return row


class EvidentlyJudge:
    """The default judge: Evidently's tests through Steward's adapter, with the prepared
    reference (test choice, cleaned columns) built once per reference and reused."""

    def __init__(self, params: Any = None, calibrated: CalibratedParams | None = None) -> None:
        self.params = params
        self.calibrated = calibrated or CalibratedParams()
        self._prepared: dict[tuple[str, str], tuple[ReferenceData, Any]] = {}

    def __call__(self, ref: ReferenceData, rows: list[dict[str, Any]]) -> Judged:
        import pandas as pd

        from processors.drift.models import ColumnSpec
        from processors.drift.reference import Reference

        held = self._prepared.get((ref.model, ref.version))
        if held is None or held[0] is not ref:
            specs = [ColumnSpec(name=n, kind=k) for n, k in ref.columns.items()]
            prepared = Reference(pd.DataFrame(ref.rows, columns=list(ref.columns)), specs,
                                 self.params, ref.prediction)
            held = self._prepared[(ref.model, ref.version)] = (ref, prepared)
        verdict = held[1].judge(pd.DataFrame(rows), self.calibrated)
        return Judged(evidently=verdict.drift, calibrated=verdict.calibrated,
                      prediction=verdict.prediction,
                      findings=tuple(str(f) for f in verdict.findings))
