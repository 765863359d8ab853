"""The canary latency check, lists in and lists out, against numbers worked by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from processors.canary_latency import CanaryLatency, CanarySpec
from processors.latency import histogram_quantile
from steward.schema import InferenceRecord, MetricPoint
from steward.stream import Source, run_steps

T0 = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)  # aligned to a 30 s window
SPEC = CanarySpec(model="fraud", baseline_version="1.0", canary_version="2.0",
                  factor=1.5, window_s=30, grace_s=5, min_samples=20)


def rec(version: str, ms: float, at: float, site: str = "eu-west-1") -> InferenceRecord:
    return InferenceRecord(model="fraud", version=version, site=site, tier="cloud",
                           ts=T0 + timedelta(seconds=at), latency_ms=ms)


def window(base_ms: list[float], canary_ms: list[float], site: str = "eu-west-1"):
    """Records for one 30 s window, then one record past end+grace that closes it."""
    out = [rec("1.0", ms, i * 0.1, site) for i, ms in enumerate(base_ms)]
    out += [rec("2.0", ms, i * 0.1, site) for i, ms in enumerate(canary_ms)]
    out.append(rec("1.0", 1.0, 36.0, site))  # watermark 36 s >= 30 s end + 5 s grace
    return out


def test_regressed_canary_is_rolled_back_with_its_numbers():
    base = [float(i) for i in range(1, 101)]          # p95 = 95 + 0.05 * (96 - 95) = 95.05
    canary = [2.0 * i for i in range(1, 101)]         # p95 = 190.1, ratio exactly 2.0
    _, emits = run_steps(CanaryLatency([SPEC]), window(base, canary), T0)
    assert len(emits) == 1
    ev = emits[0].event
    assert ev.get_type() == "steward.model.rolled_back"
    data = ev.get_data()
    assert data["baseline"] == {"version": "1.0", "count": 100, "p95_ms": pytest.approx(95.05),
                                "method": "samples"}
    assert data["canary"]["p95_ms"] == pytest.approx(190.1)
    assert data["ratio"] == pytest.approx(2.0)
    assert data["threshold"] == 1.5 and data["min_samples"] == 20
    assert data["window"]["start"] == "2026-11-23T12:00:00Z"
    assert data["window"]["end"] == "2026-11-23T12:00:30Z"
    assert ev.get_extension("partitionkey") == "fraud"
    assert emits[0].topic.name == "steward.events.proposals.v1"  # the gate decides


def test_equal_canary_and_too_little_data_emit_nothing():
    same = [float(i) for i in range(1, 101)]
    assert run_steps(CanaryLatency([SPEC]), window(same, same), T0)[1] == []
    slow_but_few = [500.0] * 19                       # one short of min_samples
    assert run_steps(CanaryLatency([SPEC]), window(same, slow_but_few), T0)[1] == []


def test_redelivery_yields_the_same_event_id_and_one_rollback_per_site():
    base, canary = [10.0] * 30, [40.0] * 30
    proc = CanaryLatency([SPEC])
    _, first = run_steps(proc, window(base, canary), T0)
    _, again = run_steps(proc, window(base, canary), T0)       # fresh state: a redelivery
    assert first[0].event.get_id() == again[0].event.get_id()
    # one state, two bad windows: still one rollback for (model, canary, site)
    two = window(base, canary) + [rec("1.0", 10.0, 30 + i * 0.1) for i in range(30)] \
        + [rec("2.0", 40.0, 30 + i * 0.1) for i in range(30)] + [rec("1.0", 1.0, 70.0)]
    _, emits = run_steps(proc, two, T0)
    assert len(emits) == 1
    # another site is judged on its own
    _, other = run_steps(proc, window(base, canary, site="us-east-1"), T0)
    assert other[0].event.get_id() != first[0].event.get_id()


def test_unwatched_models_and_late_records():
    proc = CanaryLatency([SPEC])
    stray = InferenceRecord(model="other", version="2.0", site="x", tier="edge", ts=T0,
                            latency_ms=999)
    state, emits = run_steps(proc, [stray], T0)
    assert emits == [] and state.windows == {}
    state, _ = run_steps(proc, window([10.0] * 20, [10.0] * 20), T0)
    state, emits = run_steps(proc, [rec("2.0", 999.0, 1.0)], T0, state)  # window 0 is closed
    assert state.late == 1 and emits == []


def test_tick_closes_a_window_when_traffic_stops():
    proc = CanaryLatency([SPEC])
    recs = [rec("1.0", 10.0, i * 0.1) for i in range(20)] + \
        [rec("2.0", 100.0, i * 0.1) for i in range(20)]
    state, emits = run_steps(proc, recs, T0 + timedelta(seconds=10))
    assert emits == []                                   # window still open
    state, emits = proc.tick(state, T0 + timedelta(seconds=40))
    assert len(emits) == 1 and emits[0].event.get_data()["canary"]["p95_ms"] == 100.0


def test_histogram_points_are_judged_with_histogram_quantile():
    # bounds (ms) 0,5,10,25,50,100: 100 observations, rank 95 falls in (25,50] holding 10
    # whose cumulative start is 90 -> 25 + 25 * (95 - 90) / 10 = 37.5
    counts = [0, 10, 40, 40, 10, 0, 0]
    bounds = (0.0, 5.0, 10.0, 25.0, 50.0, 100.0)
    assert histogram_quantile(0.95, bounds, counts) == pytest.approx(37.5)

    def point(version: str, c: list[int], at: float) -> MetricPoint:
        return MetricPoint(
            name="steward.inference.latency", kind="histogram", unit="s", temporality="delta",
            ts=T0 + timedelta(seconds=at), model="fraud", version=version, site="eu-west-1",
            tier="cloud", histogram={"bounds": [b / 1000 for b in bounds], "counts": c,
                                     "count": sum(c)})

    slow = [0, 0, 0, 10, 40, 40, 10]   # rank 95 in (100, +inf): lower edge 100 ms
    pts = [point("1.0", counts, 1), point("2.0", slow, 1), point("1.0", [1, 0, 0, 0, 0, 0, 0], 40)]
    _, emits = run_steps(CanaryLatency([SPEC]), pts, T0)
    data = emits[0].event.get_data()
    assert data["baseline"]["p95_ms"] == pytest.approx(37.5)
    assert data["canary"]["p95_ms"] == pytest.approx(100.0)
    assert data["canary"]["method"] == "histogram"


def test_cumulative_histograms_are_differenced():
    spec = SPEC.model_copy(update={"min_samples": 10})

    def point(version: str, c: list[int], at: float) -> MetricPoint:
        return MetricPoint(
            name="steward.inference.latency", kind="histogram", unit="ms",
            temporality="cumulative", ts=T0 + timedelta(seconds=at), start_ts=T0,
            model="fraud", version=version, site="eu-west-1", tier="cloud",
            histogram={"bounds": [10.0, 20.0], "counts": c, "count": sum(c)})

    # second export of baseline repeats the first 10 then adds 10 more: window holds 20, not 30
    pts = [point("1.0", [10, 0, 0], 1), point("1.0", [20, 0, 0], 2),
           point("2.0", [0, 0, 20], 2), point("1.0", [20, 0, 0], 40)]
    _, emits = run_steps(CanaryLatency([spec]), pts, T0)
    assert emits[0].event.get_data()["baseline"]["count"] == 20


def test_cumulative_series_are_forgotten_after_an_hour_of_silence():
    def point(at: float) -> MetricPoint:
        return MetricPoint(
            name="steward.inference.latency", kind="histogram", unit="ms",
            temporality="cumulative", ts=T0 + timedelta(seconds=at), start_ts=T0,
            model="fraud", version="1.0", site="eu-west-1", tier="cloud",
            histogram={"bounds": [10.0], "counts": [5, 0], "count": 5})

    proc = CanaryLatency([SPEC])
    state, _ = run_steps(proc, [point(1)], T0)
    assert len(state.cumulative) == 1
    state, _ = proc.tick(state, T0 + timedelta(minutes=59))
    assert len(state.cumulative) == 1
    state, _ = proc.tick(state, T0 + timedelta(minutes=61))
    assert state.cumulative == {}


def test_naive_timestamps_are_refused_at_the_schema():
    with pytest.raises(ValueError, match="timezone"):
        InferenceRecord(model="fraud", version="1.0", site="s", tier="cloud",
                        ts="2026-01-01T00:00:00", latency_ms=1)


def test_hold_names_the_first_offset_of_every_open_window():
    proc = CanaryLatency([SPEC])
    recs = [rec("1.0", 10.0, 1), rec("2.0", 10.0, 2), rec("1.0", 10.0, 31)]  # windows 0 and 30
    state, _ = run_steps(proc, recs, T0)          # run_steps gives offsets 0, 1, 2 on "list"
    assert proc.hold(state) == {"list": 0}
    state, _ = run_steps(proc, [rec("1.0", 10.0, 36)], T0, state)  # closes window 0
    assert proc.hold(state) == {"list": 2}        # window 30 opened at offset 2
    assert list(state.windows[0].held) == [(("fraud", "eu-west-1"), T0 + timedelta(seconds=30))]


EARLY = SPEC.model_copy(update={"early": True, "window_s": 10, "min_samples": 8})


def interleaved(base_ms: list[float], canary_ms: list[float], at: float = 0.0):
    """Baseline and canary records taking turns 0.1 s apart from `at`: b, c, b, c, ..."""
    out = []
    for i, (b, c) in enumerate(zip(base_ms, canary_ms, strict=True)):
        out += [rec("1.0", b, at + 0.2 * i), rec("2.0", c, at + 0.2 * i + 0.1)]
    return out


def emits_by_record(proc: CanaryLatency, records: list, state=None):
    """Step record by record (offsets 0..n-1): the state and (index, emit) of every emit."""
    state = proc.initial_state() if state is None else state
    out = []
    for i, r in enumerate(records):
        state, emits = proc.step(state, r, T0, Source("list", 0, i))
        out += [(i, e) for e in emits]
    return state, out


# baseline sorted [10 x 7, 12]: p95 rank 0.95 * 7 = 6.65 -> 10 + 0.65 * (12 - 10) = 11.3
# canary sorted [40 x 7, 50]:   p95 rank 6.65 -> 40 + 0.65 * (50 - 40) = 46.5
SLOW_BASE, SLOW_CANARY = [10.0] * 7 + [12.0], [40.0] * 7 + [50.0]
CLOSE = rec("1.0", 10.0, 16.0)          # watermark 16 s >= 10 s end + 5 s grace


def test_early_spec_rolls_back_on_the_record_that_gives_both_versions_min_samples():
    records = interleaved(SLOW_BASE, SLOW_CANARY)
    _, emits = emits_by_record(CanaryLatency([EARLY]), records)
    assert [i for i, _ in emits] == [15]          # the 8th canary record (b7 at 14 had 7)
    ev = emits[0][1].event
    data = ev.get_data()
    assert data["early"] is True
    assert data["baseline"] == {"version": "1.0", "count": 8, "p95_ms": pytest.approx(11.3),
                                "method": "samples"}
    assert data["canary"]["count"] == 8
    assert data["canary"]["p95_ms"] == pytest.approx(46.5)
    assert data["ratio"] == pytest.approx(46.5 / 11.3)       # 4.115...
    assert data["window"]["start"] == "2026-11-23T12:00:00Z"
    assert data["window"]["end"] == "2026-11-23T12:00:10Z"
    assert data["reason"].endswith("; judged before the window closed")
    assert ev.get_time() == T0 + timedelta(seconds=1.5)     # the deciding record's time


def test_without_early_the_same_records_wait_for_the_window_to_close():
    late = SPEC.model_copy(update={"window_s": 10, "min_samples": 8})
    records = interleaved(SLOW_BASE, SLOW_CANARY)
    _, emits = emits_by_record(CanaryLatency([late]), [*records, CLOSE])
    assert [i for i, _ in emits] == [16]          # the record past end + grace
    ev = emits[0][1].event
    data = ev.get_data()
    assert data["early"] is False
    assert data["baseline"]["p95_ms"] == pytest.approx(11.3)
    assert data["canary"]["p95_ms"] == pytest.approx(46.5)
    assert data["ratio"] == pytest.approx(46.5 / 11.3)
    assert data["window"]["end"] == "2026-11-23T12:00:10Z"
    assert ev.get_time() == T0 + timedelta(seconds=10)
    _, early = emits_by_record(CanaryLatency([EARLY]), records)
    assert early[0][1].event.get_id() == ev.get_id()   # one rollback, however judged


def test_an_early_rollback_is_not_emitted_again_at_close_or_in_a_later_window():
    proc = CanaryLatency([EARLY])
    state, emits = emits_by_record(proc, interleaved(SLOW_BASE, SLOW_CANARY))
    assert [i for i, _ in emits] == [15]
    assert state.fired == {("fraud", "2.0", "eu-west-1")}
    # window 0-10 s closes, 10-20 s regresses again and closes too (watermark 26 s)
    again = [CLOSE, *interleaved(SLOW_BASE, SLOW_CANARY, at=10.0), rec("1.0", 10.0, 26.0)]
    state, emits = emits_by_record(proc, again, state)
    assert emits == []
    assert list(state.windows[0].open) == [(("fraud", "eu-west-1"),   # only 20-30 s
                                            T0 + timedelta(seconds=20))]


def test_an_early_spec_whose_canary_is_not_slower_emits_nothing():
    same = [10.0] * 7 + [12.0]
    _, emits = emits_by_record(CanaryLatency([EARLY]), [*interleaved(same, same), CLOSE])
    assert emits == []


def test_early_looks_are_spaced_by_a_quarter_of_min_samples():
    # first look at record 15 (both at 8, equal p95: ratio 1.0, 16 records looked at); the
    # next needs 16 + max(1, 8 // 4, 16 // 8) = 18 records, so the first slow canary (16,
    # canary [10 x 8, 40]: p95 rank 7.6 -> 28, ratio 2.8) is not looked at; the second
    # (17, canary [10 x 8, 40, 40]: p95 rank 8.55 -> 40, ratio 4.0) is
    records = [*interleaved([10.0] * 8, [10.0] * 8), rec("2.0", 40.0, 1.6),
               rec("2.0", 40.0, 1.7)]
    state, emits = emits_by_record(CanaryLatency([EARLY]), records)
    assert [i for i, _ in emits] == [17]
    data = emits[0][1].event.get_data()
    assert data["canary"]["count"] == 10 and data["canary"]["p95_ms"] == pytest.approx(40.0)
    assert data["ratio"] == pytest.approx(4.0)
    (aggs,) = state.windows[0].open.values()
    assert aggs.looked == 18
