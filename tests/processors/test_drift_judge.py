"""The drift judge over lists: windows, minimum rows, verdicts checked against scipy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from scipy import stats

from processors.drift_judge import DriftJudge, DriftSpec, EvidentlyJudge
from processors.references import ReferenceData
from steward.schema import InferenceRecord
from steward.stream import run_steps

T0 = datetime(2026, 11, 23, tzinfo=UTC)
RNG = np.random.default_rng(7)
REF_AMOUNT = RNG.normal(100, 10, 400)
REF = ReferenceData("fraud", "1.4.0", {"amount": "numerical", "score": "numerical"}, "score",
                    [{"amount": float(a), "score": float(s)}
                     for a, s in zip(REF_AMOUNT, RNG.random(400), strict=True)])
SPEC = DriftSpec(window_s=60, grace_s=0, min_rows=50)


def window(amounts: np.ndarray, start: float, site: str = "berlin") -> list[InferenceRecord]:
    return [InferenceRecord(model="fraud", version="1.4.0", site=site, tier="edge",
                            ts=T0 + timedelta(seconds=start + i * 0.1), latency_ms=1.0,
                            features={"amount": float(a)}, prediction=0.5)
            for i, a in enumerate(amounts)]


def closer(at: float) -> list[InferenceRecord]:
    return window(np.array([100.0]), at)


def test_a_shifted_column_drifts_with_evidentlys_ks_and_threshold():
    current = RNG.normal(130, 10, 200)
    proc = DriftJudge(SPEC, lambda m, v: REF, EvidentlyJudge())
    _, emits = run_steps(proc, window(current, 0) + closer(61), T0)
    (emit,) = emits
    v = emit.record
    assert (emit.topic.name, emit.key) == ("steward.drift.verdicts.v1", "fraud")
    amount = next(c for c in v.evidently.columns if c.column == "amount")
    assert (amount.stattest, amount.threshold, amount.drifted) == ("ks", 0.05, True)
    assert amount.score == pytest.approx(stats.ks_2samp(REF_AMOUNT, current).pvalue)
    assert (amount.reference_rows, amount.current_rows) == (400, 200)
    # the prediction column (0.5 everywhere vs uniform) drifts too: 2 of 2 columns
    assert v.prediction is not None and v.prediction.column == "score" and v.prediction.drifted
    assert v.evidently.share == 1.0 and v.evidently.dataset_drift
    # the calibrated verdict agrees here, and decides by default
    assert v.calibrated.drifted_columns == ["amount", "score"] and v.calibrated.dataset_drift
    assert v.drift and v.decided_by == "calibrated"
    assert v.window.start == T0 and v.rows == 200 and v.source == "raw"


def test_small_windows_and_unknown_versions_get_no_verdict():
    proc = DriftJudge(SPEC, lambda m, v: REF if v == "1.4.0" else None, EvidentlyJudge())
    state, emits = run_steps(proc, window(RNG.normal(100, 10, 49), 0) + closer(61), T0)
    assert emits == [] and state.too_small == 1
    stray = InferenceRecord(model="fraud", version="9", site="s", tier="edge", ts=T0,
                            latency_ms=1)
    state, _ = run_steps(proc, [stray, stray], T0, state)
    assert state.unreferenced == {("fraud", "9"): 2}


def test_windows_are_capped_and_say_so():
    spec = SPEC.model_copy(update={"max_rows": 100})
    proc = DriftJudge(spec, lambda m, v: REF, EvidentlyJudge())
    _, emits = run_steps(proc, window(RNG.normal(100, 10, 150), 0) + closer(61), T0)
    v = emits[0].record
    assert v.rows == 100 and "capped at 100 rows; 50 not judged" in v.findings[-1]


def test_verdict_ids_are_stable_across_replays():
    recs = window(RNG.normal(100, 10, 60), 0) + closer(61)
    ids = [run_steps(DriftJudge(SPEC, lambda m, v: REF, EvidentlyJudge()), recs, T0)[1][0]
           .record.id for _ in range(2)]
    assert ids[0] == ids[1]
