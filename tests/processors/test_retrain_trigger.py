"""Retraining triggers: k of m, once per model version, replays give the same id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from processors.retrain_trigger import RetrainTrigger, TriggerSpec
from steward.schema.drift import ColumnDrift, DatasetDrift, DriftVerdict
from steward.schema.events import Window
from steward.stream import run_steps

T0 = datetime(2026, 11, 23, tzinfo=UTC)
SPEC = TriggerSpec(k=3, m=5, cooldown_s=3600)


def verdict(i: int, drift: bool, site: str = "berlin", version: str = "1.4.0") -> DriftVerdict:
    start = T0 + timedelta(minutes=5 * i)
    col = ColumnDrift(column="amount", kind="numerical", stattest="ks", threshold=0.05,
                      score=0.001 if drift else 0.4, drifted=drift, reference_rows=1000,
                      current_rows=200)
    ds = DatasetDrift(method="evidently", columns=[col],
                      drifted_columns=["amount"] if drift else [], share=1.0 if drift else 0.0,
                      drift_share=0.5, dataset_drift=drift)
    return DriftVerdict(id=f"{site}-{i}", model="fraud", version=version, site=site,
                        window=Window(start=start, end=start + timedelta(minutes=5)), rows=200,
                        evidently=ds, decided_by="evidently", drift=drift)


def test_three_of_five_triggers_once_and_names_its_windows():
    pattern = [True, False, True, False, True, True, True, True]  # 3rd drift at i=4
    _, emits = run_steps(RetrainTrigger(SPEC), [verdict(i, d) for i, d in
                                                    enumerate(pattern)], T0)
    assert len(emits) == 1
    data = emits[0].event.get_data()
    assert [w["verdict_id"] for w in data["windows"]] == ["berlin-0", "berlin-2", "berlin-4"]
    assert data["rule"] == "3 of the last 5 windows drifted"
    assert data["sites"] == ["berlin"] and data["drifted_columns"] == ["amount"]
    assert emits[0].event.get_type() == "steward.retrain.requested"
    assert data["trigger_id"] == emits[0].event.get_id()


def test_scattered_drift_and_stationary_streams_never_trigger():
    pattern = [True, False, False, True, False, False, True, False, False] * 20  # 1-2 of 5
    _, emits = run_steps(RetrainTrigger(SPEC), [verdict(i, d) for i, d in
                                                enumerate(pattern)], T0)
    assert emits == []
    _, emits = run_steps(RetrainTrigger(SPEC), [verdict(i, False) for i in range(300)], T0)
    assert emits == []


def test_other_sites_join_the_open_request_and_it_reopens_after_cooldown():
    proc = RetrainTrigger(SPEC)
    berlin = [verdict(i, True) for i in range(3)]
    lyon = [verdict(i, True, site="lyon") for i in range(3)]
    state, emits = run_steps(proc, berlin + lyon, T0)
    assert len(emits) == 1
    assert state.open[("fraud", "1.4.0")].sites == {"berlin", "lyon"}
    # another version is its own request
    _, other = run_steps(proc, [verdict(i, True, version="1.5.0") for i in range(3)], T0, state)
    assert len(other) == 1
    # past the cooldown (an hour of 5-minute windows later), persistent drift asks again
    later = [verdict(20 + i, True) for i in range(3)]
    _, again = run_steps(proc, later, T0, state)
    assert len(again) == 1 and again[0].event.get_id() != emits[0].event.get_id()


def test_a_replay_emits_the_same_id_and_hold_keeps_what_replay_needs():
    proc = RetrainTrigger(SPEC)
    stream = [verdict(i, i >= 2) for i in range(6)]
    state, first = run_steps(proc, stream, T0)
    _, again = run_steps(proc, stream, T0)
    assert first[0].event.get_id() == again[0].event.get_id()
    assert proc.hold(state) == {"list": 2}  # the request opened by offsets 2-4; history: 5


def test_k_above_m_is_refused():
    with pytest.raises(ValueError, match="cannot exceed"):
        RetrainTrigger(TriggerSpec(k=6, m=5))
