"""A version with no uploaded reference gets one from its first N records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api.references import ReferenceCapture, ReferenceStore
from api.store import Store
from steward.schema import InferenceRecord

T0 = datetime(2026, 11, 23, tzinfo=UTC)


def rec(version: str, i: int) -> InferenceRecord:
    return InferenceRecord(model="fraud", version=version, site="s", tier="edge",
                           ts=T0 + timedelta(seconds=i), latency_ms=1.0,
                           features={"amount": float(i), "channel": "pos" if i % 2 else "web",
                                     "vip": i % 3 == 0}, prediction=i / 100)


def test_capture_takes_the_first_n_records_by_time_and_never_overrides_an_upload(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    refs = ReferenceStore(store)
    capture = ReferenceCapture(refs, rows=20)
    store.insert_inferences([(rec("2.0", i), 0, i) for i in reversed(range(15))])
    assert capture.after_insert({("fraud", "2.0")}) == []          # 15 < 20: not yet
    store.insert_inferences([(rec("2.0", i), 0, i) for i in range(15, 30)])
    (ref,) = capture.after_insert({("fraud", "2.0")})
    assert (ref.source, ref.prediction, len(ref.rows)) == ("capture", "prediction", 20)
    assert ref.columns == {"amount": "numerical", "channel": "categorical",
                           "vip": "categorical", "prediction": "numerical"}
    assert [r["amount"] for r in ref.rows] == [float(i) for i in range(20)]   # by event time
    assert ref.rows[0]["vip"] == "True" and ref.rows[1]["channel"] == "pos"
    assert refs.get("fraud", "2.0").source == "capture"
    assert capture.after_insert({("fraud", "2.0")}) == []          # once

    import pandas as pd
    refs.put("fraud", "3.0", pd.DataFrame({"amount": [1.0]}), [], None)
    store.insert_inferences([(rec("3.0", i), 0, i) for i in range(30)])
    assert capture.after_insert({("fraud", "3.0")}) == []          # an upload wins
    assert refs.get("fraud", "3.0").source == "upload"
    assert ReferenceCapture(refs, rows=0).after_insert({("fraud", "4.0")}) == []
    store.close()


def test_records_without_features_or_prediction_capture_nothing_and_raise_nothing(tmp_path):
    """Latency-only records (valid input) once made the capture raise inside the sink's
    write: every such batch was retried item by item and dead-lettered though stored."""
    store = Store(tmp_path / "s.duckdb")
    refs = ReferenceStore(store)
    capture = ReferenceCapture(refs, rows=20)
    bare = [InferenceRecord(model="fraud", version="5.0", site="s", tier="edge",
                            ts=T0 + timedelta(seconds=i), latency_ms=1.0) for i in range(25)]
    store.insert_inferences([(r, 0, i) for i, r in enumerate(bare)])
    assert capture.after_insert({("fraud", "5.0")}) == []
    assert refs.get("fraud", "5.0") is None
    assert capture.after_insert({("fraud", "5.0")}) == []          # not looked at again
    store.close()
