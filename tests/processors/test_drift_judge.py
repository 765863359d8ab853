"""The drift judge over lists: windows, minimum rows, verdicts checked against scipy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from scipy import stats

from processors.drift.evidently_judge import EvidentlyJudge
from processors.drift_judge import DriftJudge, DriftSpec
from processors.references import ReferenceData
from steward.errors import InvalidInput
from steward.profile_spec import spec_from_reference
from steward.profiles import ProfileBuilder
from steward.schema import InferenceRecord
from steward.stream import Source, run_steps

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


def profile(amounts: np.ndarray, node: str, spec_id_of=None, start=T0, length_s=60):
    """A node's profile of one 60 s window, built to the reference's spec."""
    spec = spec_from_reference("fraud", "1.4.0", REF.columns, REF.prediction, REF.rows)
    builder = ProfileBuilder(spec_id_of or spec, seed=1)
    for a in amounts:
        builder.add({"amount": float(a)}, 0.5)
    return builder.build("fraud", "1.4.0", "berlin", node, start,
                         start + timedelta(seconds=length_s))


def test_profiles_of_two_nodes_and_raw_rows_make_one_window():
    proc = DriftJudge(SPEC, lambda m, v: REF, EvidentlyJudge())
    a, b = profile(RNG.normal(130, 10, 80), "n1"), profile(RNG.normal(130, 10, 70), "n2")
    state, emits = run_steps(proc, [a, b, a, *window(RNG.normal(130, 10, 30), 1), *closer(61)], T0)
    (emit,) = emits
    v = emit.record
    assert v.source == "profile" and v.rows == 180 and state.duplicates == 1
    amount = next(c for c in v.evidently.columns if c.column == "amount")
    assert amount.current_rows == 180 and amount.drifted and v.drift


def test_a_profile_that_does_not_fit_is_rejected_with_the_reason():
    proc = DriftJudge(SPEC, lambda m, v: REF, EvidentlyJudge())
    state = proc.initial_state()
    other = ReferenceData("fraud", "1.4.0", REF.columns, REF.prediction, REF.rows[:100])
    stale = spec_from_reference("fraud", "1.4.0", other.columns, other.prediction, other.rows)
    with pytest.raises(InvalidInput, match="fetch the profile spec again"):
        run_steps(proc, [profile(RNG.normal(100, 10, 60), "n1", stale)], T0, state)
    with pytest.raises(InvalidInput, match="not one of this judge's 60s windows"):
        run_steps(proc, [profile(RNG.normal(100, 10, 60), "n1", start=T0 + timedelta(
            seconds=30))], T0, state)
    assert state.windows.open == {}


def test_a_new_column_is_a_data_quality_alert_once():
    proc = DriftJudge(SPEC, lambda m, v: REF, EvidentlyJudge())
    recs = [r.model_copy(update={"features": {**r.features, "colour": "red"}})
            for r in window(RNG.normal(100, 10, 60), 0) + window(RNG.normal(100, 10, 60), 61)]
    _, emits = run_steps(proc, recs + closer(200), T0)
    verdicts = [e for e in emits if e.record is not None]
    alerts = [e.event for e in emits if e.event is not None]
    assert len(verdicts) == 2 and len(alerts) == 1
    (alert,) = alerts
    attrs = alert.get_attributes()
    assert (attrs["type"], attrs["subject"]) == ("steward.data_quality", "fraud/1.4.0/berlin")
    data = alert.get_data()
    assert data["verdict_id"] == verdicts[0].record.id
    assert [(f["code"], f["column"]) for f in data["findings"]] == [
        ("unknown_in_current", "colour")]
    assert "unknown_in_current: colour" in verdicts[1].record.findings[0]


def test_records_marked_profiled_are_left_to_their_profile():
    proc = DriftJudge(SPEC, lambda m, v: REF, EvidentlyJudge())
    both = [r.model_copy(update={"profiled": True}) for r in window(RNG.normal(130, 10, 80), 1)]
    _, emits = run_steps(proc, [profile(RNG.normal(130, 10, 80), "n1"), *both, *closer(61)], T0)
    assert [e.record.rows for e in emits] == [80]


SLIDING = DriftSpec(window_s=60, slide_s=20, grace_s=0, min_rows=50)


def panes(counts: list[int], pane_s: int = 20) -> list[InferenceRecord]:
    """counts[i] records in pane i (amounts like the reference's)."""
    out = []
    for i, n in enumerate(counts):
        out += window(RNG.normal(100, 10, n), i * pane_s)[:n]
    return out


def test_sliding_windows_are_made_of_panes():
    proc = DriftJudge(SLIDING, lambda m, v: REF, EvidentlyJudge())
    # panes of 30 rows; the window ending at 20 s holds 30 rows (< 50): no verdict
    state, emits = run_steps(proc, panes([30, 30, 30, 30, 1]), T0)
    got = [(e.record.window.start - T0, e.record.window.end - T0, e.record.rows,
            e.record.window.kind) for e in emits]
    s = timedelta(seconds=1)
    assert got == [(-20 * s, 40 * s, 60, "sliding"), (0 * s, 60 * s, 90, "sliding"),
                   (20 * s, 80 * s, 90, "sliding")]
    assert state.too_small == 1
    # the panes of [20, 80) are kept for the next windows, their input held for replay
    assert [p.start - T0 for p in state.panes.recent[("fraud", "1.4.0", "berlin")]] == [
        20 * s, 40 * s, 60 * s]
    assert proc.hold(state) == {"list": 30}


def test_sliding_windows_merge_profiles_across_panes():
    proc = DriftJudge(SLIDING.model_copy(update={"min_rows": 100}), lambda m, v: REF,
                      EvidentlyJudge())
    first = profile(RNG.normal(100, 10, 60), "n1", start=T0, length_s=20)
    second = profile(RNG.normal(100, 10, 60), "n1", start=T0 + timedelta(seconds=20),
                     length_s=20)
    _, emits = run_steps(proc, [first, second, *closer(45)], T0)
    (v,) = [e.record for e in emits]
    assert (v.source, v.rows, v.window.end - v.window.start) == (
        "profile", 120, timedelta(seconds=60))


def test_a_slide_must_divide_the_window():
    with pytest.raises(ValueError, match="divide"):
        DriftSpec(window_s=60, slide_s=25)


def test_sliding_panes_survive_ticks_while_a_backfill_runs_behind_the_clock():
    proc = DriftJudge(SLIDING.model_copy(update={"grace_s": 2.0}), lambda m, v: REF,
                      EvidentlyJudge())
    now = T0 + timedelta(hours=5)  # the records are five hours old
    state = proc.initial_state()
    emits = []
    for rec in panes([30, 30, 30, 1]):
        state, out = proc.step(state, rec, now, Source("list", 0, 0))
        emits += out
        state, out = proc.tick(state, now)  # a tick between every record
        emits += out
    assert [e.record.rows for e in emits] == [60]  # [-20, 40): panes 0 and 1
    # quiet for a window plus grace of wall-clock time: the open panes close (windows of
    # 90 and 61 rows), then the key's panes are forgotten
    state, out = proc.tick(state, now + timedelta(seconds=63))
    assert [e.record.rows for e in out] == [90, 61]
    assert state.panes.recent == {}


def owner(proc, timeline, start=0, mark=-1):
    """Drive `proc` as the runner does: ("rec", record) at the next offset, ("tick", now).
    Records below `mark` (an earlier owner's emitted mark) run for state only. The verdicts
    out, the committed offset, and the mark this owner leaves."""
    state, out, offset, committed = proc.initial_state(), [], 0, 0
    for kind, item in timeline:
        emits = []
        if kind == "tick":
            state, emits = proc.tick(state, item)
        else:
            if offset >= start:
                state, emits = proc.step(state, item, item.ts, Source("list", 0, offset))
                emits = emits if offset >= mark else []
            offset += 1
        out += [e.record for e in emits if e.record is not None]
        committed = min(offset, proc.hold(state).get("list", offset))
        mark = offset if emits else mark
    return out, committed, mark


def test_a_replay_never_judges_a_window_the_clock_had_closed_from_part_of_its_rows():
    rng = np.random.default_rng(11)
    # berlin's window [0, 60): 60 shifted rows, then paris opens [60, 120) at offset 60,
    # then 60 rows like the reference; the clock closes berlin's window, not paris's
    def rows(amounts, start, site="berlin"):  # scores like the reference's
        return [("rec", r.model_copy(update={"prediction": float(p)})) for r, p in zip(
            window(amounts, start, site), rng.random(len(amounts)), strict=True)]

    timeline = [*rows(rng.normal(130, 10, 60), 0), *rows(np.array([100.0]), 70, "paris"),
                *rows(rng.normal(100, 10, 60), 6), ("tick", T0 + timedelta(seconds=61))]
    proc = DriftJudge(SPEC, lambda m, v: REF, EvidentlyJudge())
    (first,), committed, mark = owner(proc, timeline)
    assert (first.rows, first.drift, first.site) == (120, True, "berlin")
    assert (committed, mark) == (0, 121)  # not 60, paris's first record: it splits berlin's
    # a new owner replays from the committed offset, then the clock goes on
    again, _, _ = owner(proc, [*timeline, ("tick", T0 + timedelta(seconds=200))],
                        committed, mark)
    assert all(v == first for v in again if v.id == first.id)
    # from 60, the replay would have judged berlin's window on its last 60 rows alone
    (partial,), _, _ = owner(proc, [*timeline, ("tick", T0 + timedelta(seconds=200))], 60, mark)
    assert (partial.id, partial.rows, partial.drift) == (first.id, 60, False)
