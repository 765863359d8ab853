"""The contract: validation with reasons, deterministic ids, CloudEvents round trips."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from steward import topics as T
from steward.codec import decode_batch, encode_batch, pack_batches
from steward.schema import (
    EventType,
    GpuSample,
    InferenceRecord,
    MetricPoint,
    event_id,
    from_kafka,
    key_of,
    to_json,
    to_kafka,
)
from steward.schema.events import LatencyStats, ModelRolledBack, Window, make_event

TS = "2026-11-23T10:00:00Z"
BASE = {"model": "fraud", "version": "1.4.0", "site": "berlin", "tier": "edge", "ts": TS,
        "latency_ms": 12.5}


def test_records_without_id_get_a_stable_content_id():
    a, b = InferenceRecord(**BASE), InferenceRecord(**BASE)
    assert a.id == b.id and a.id.startswith("inf-")
    assert InferenceRecord(**{**BASE, "latency_ms": 12.6}).id != a.id
    assert InferenceRecord(**{**BASE, "id": "client-7"}).id == "client-7"


@pytest.mark.parametrize(("change", "field"), [
    ({"tier": "moon"}, "tier"), ({"site": "a/b"}, "site"), ({"latency_ms": -1}, "latency_ms"),
    ({"latency_ms": float("nan")}, "latency_ms"), ({"model": ""}, "model"),
    ({"sample_rate": 0}, "sample_rate"), ({"surprise": 1}, "surprise"), ({"ts": "then"}, "ts"),
])
def test_invalid_records_name_the_field(change, field):
    with pytest.raises(ValidationError) as err:
        InferenceRecord(**{**BASE, **change})
    assert field in str(err.value)


def test_histogram_shape_is_checked():
    with pytest.raises(ValidationError, match="len\\(bounds\\) \\+ 1"):
        MetricPoint(name="x", kind="histogram", ts=TS, model="m", version="1", site="s",
                    tier="cloud", histogram={"bounds": [1.0], "counts": [1], "count": 1})


def test_keys_keep_a_model_site_together():
    assert key_of(InferenceRecord(**BASE)) == "fraud/berlin"
    gpu = GpuSample(ts=TS, site="berlin", tier="edge", node="n1", gpu_uuid="GPU-1")
    assert key_of(gpu) == "berlin/n1"


def test_batch_codec_keeps_good_records_and_explains_bad_ones():
    good = InferenceRecord(**BASE)
    value = encode_batch([good])
    assert decode_batch(value, InferenceRecord).items == [good]
    mixed = value.replace(b'"records":[', b'"records":[{"model":"x"},')
    decoded = decode_batch(mixed, InferenceRecord)
    assert decoded.items == [good]
    assert decoded.rejected[0].index == 0 and "version: Field required" in \
        decoded.rejected[0].reason
    assert decode_batch(b"[]", InferenceRecord).rejected[0].error_type == "shape"


def test_batches_decoded_from_bytes_match_the_records_decoded_one_by_one():
    doc = {**BASE, "ts": "2026-11-23T12:00:00+02:00", "features": {"big": 2**70, "x": "é"}}
    value = json.dumps({"schema": "steward.inference.v1", "records": [doc, doc]}).encode()
    one = InferenceRecord.model_validate(json.loads(json.dumps(doc)))  # id from content
    assert decode_batch(value, InferenceRecord).items == [one, one]
    nan = value.replace(b'"latency_ms": 12.5', b'"latency_ms": NaN', 1)
    decoded = decode_batch(nan, InferenceRecord)
    assert decoded.items == [one] and decoded.rejected[0].index == 0
    assert "latency_ms" in decoded.rejected[0].reason
    bom = b"\xef\xbb\xbf" + value  # the JSON parser refuses it, json.loads takes it
    assert decode_batch(bom, InferenceRecord).items == [one, one]


def test_event_ids_are_deterministic_and_survive_kafka():
    assert event_id("t", "a", 1) == event_id("t", "a", 1) != event_id("t", "a", 2)
    t = datetime(2026, 11, 23, tzinfo=UTC)
    stats = LatencyStats(version="1", count=20, p95_ms=10.0, method="samples")
    data = ModelRolledBack(model="m", site="s", canary_version="2", baseline_version="1",
                           check="c", reason="r", window=Window(start=t, end=t),
                           baseline=stats, canary=stats.model_copy(update={"version": "2"}),
                           ratio=2.0, threshold=1.5, min_samples=20)
    ev = make_event(EventType.MODEL_ROLLED_BACK, source="/x", subject="m/s", data=data, key="m",
                    time=t, facts=("m", "2", "s"))
    key, value, headers = to_kafka(ev)
    assert key == b"m" and dict(headers)["ce_type"] == b"steward.model.rolled_back"
    back = to_json(from_kafka(key, value, headers))
    assert back == to_json(ev)
    assert back["id"] == event_id(EventType.MODEL_ROLLED_BACK, "m", "2", "s")
    assert back["dataschema"] == "urn:steward:schema:steward.model.rolled_back.v1"


def test_topics_are_named_once():
    names = [t.name for t in T.ALL]
    assert len(set(names)) == len(names)
    assert T.by_name("p.steward.events.actions.v1", "p.") is T.ACTIONS
    with pytest.raises(KeyError):
        T.by_name("steward.events.actions.v1", "p.")


def test_batches_are_bounded_in_records_and_bytes():
    records = [InferenceRecord(**{**BASE, "id": f"r{i}"}) for i in range(10)]
    one = len(records[0].model_dump_json(by_alias=True))
    values = list(pack_batches(records, max_records=4, max_bytes=10**6))
    assert [len(json.loads(v)["records"]) for v in values] == [4, 4, 2]
    # room for exactly three records: head + tail + 3 docs and 3 separators
    head_tail = len(b'{"schema":"steward.inference.v1","records":[]}')
    values = list(pack_batches(records, max_records=100, max_bytes=head_tail + 3 * (one + 1)))
    assert [len(json.loads(v)["records"]) for v in values] == [3, 3, 3, 1]
    assert all(len(v) <= head_tail + 3 * (one + 1) for v in values)
    assert [r["id"] for v in values for r in json.loads(v)["records"]] == \
        [f"r{i}" for i in range(10)]
    assert list(pack_batches(records[:1], 10, 10)) != []  # too big alone: caller decides
