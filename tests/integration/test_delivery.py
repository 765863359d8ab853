"""Delivery guarantees: redelivery stores one event; bad input is dead-lettered with its
reason and bytes, and never blocks the records behind it; the HTTP edge answers 4xx."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import httpx
from kafka import KafkaProducer

from processors.canary_latency import CanaryLatency, CanarySpec
from steward import topics as T

SPEC = CanarySpec(model="m", baseline_version="1", canary_version="2", factor=1.5,
                  window_s=10, grace_s=0, min_samples=5)
T0 = datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC)


def batch(version: str, ms: float, n: int, at: float = 0.0) -> list[dict]:
    return [{"id": f"{version}-{at}-{i}", "model": "m", "version": version, "site": "s1",
             "tier": "edge", "ts": (T0 + timedelta(seconds=at + i * 0.01)).isoformat(),
             "latency_ms": ms} for i in range(n)]


def regressing_window() -> list[dict]:
    """Baseline at 10 ms, canary at 50 ms, then a record that closes the window."""
    return batch("1", 10.0, 10) + batch("2", 50.0, 10) + batch("1", 10.0, 1, at=15.0)


def test_redelivered_input_yields_one_stored_event(kafka, start_collector, start_runner,
                                                   start_gate, start_api, topic_reader, wait):
    collector = start_collector()
    api, store = start_api()
    # The same telemetry, processed by two independent consumer groups: what a crash before
    # the commit, or a replay, looks like downstream.
    start_runner(CanaryLatency([SPEC]), group=f"{kafka.topic_prefix}a")
    start_runner(CanaryLatency([SPEC]), group=f"{kafka.topic_prefix}b")
    start_gate()  # rollbacks pass the governance gate
    resp = httpx.post(f"{collector.url}/v1/inferences", json={"records": regressing_window()})
    assert resp.status_code == 200 and resp.json()["accepted"] == 21
    actions = T.ACTIONS.full(kafka.topic_prefix)
    msgs = wait(lambda: (m := topic_reader(actions)) and len(m) == 2 and m, what="two emits")
    assert msgs[0]["headers"]["ce_id"] == msgs[1]["headers"]["ce_id"]
    wait(lambda: httpx.get(f"{api.url}/events").json()["events"], what="stored event")
    # posting the very same records again changes nothing either
    httpx.post(f"{collector.url}/v1/inferences", json={"records": regressing_window()})
    wait(lambda: len(topic_reader(T.INFERENCE.full(kafka.topic_prefix))) >= 2, what="resend")
    assert store.count_events() == 1
    assert len(httpx.get(f"{api.url}/events").json()["events"]) == 1


def test_garbage_on_a_topic_is_dead_lettered_and_later_records_still_count(
        kafka, start_runner, start_gate, topic_reader, wait):
    start_runner(CanaryLatency([SPEC]))
    start_gate()  # rollbacks pass the governance gate
    inference = T.INFERENCE.full(kafka.topic_prefix)
    producer = KafkaProducer(bootstrap_servers=kafka.servers())
    good = {"schema": "steward.inference.v1", "records": regressing_window()}
    half_bad = {"schema": "steward.inference.v1",
                "records": [{"model": "m", "version": "1", "site": "s1", "tier": "orbit",
                             "ts": T0.isoformat(), "latency_ms": 1}]}
    for value in (b"\x00\xffnot json", json.dumps(half_bad).encode(), json.dumps(good).encode()):
        producer.send(inference, key=b"m/s1", value=value)  # same key: same partition, in order
    producer.flush()
    producer.close()

    dead = wait(lambda: (m := topic_reader(T.DEADLETTER.full(kafka.topic_prefix)))
                and len(m) == 2 and m, what="two dead letters")
    letters = [json.loads(m["value"]) for m in dead]
    assert letters[0]["error_type"] == "json" and "not JSON" in letters[0]["reason"]
    assert base64.b64decode(letters[0]["payload_b64"]) == b"\x00\xffnot json"
    assert letters[0]["topic"] == inference and letters[0]["offset"] == 0
    assert letters[1]["error_type"] == "schema" and "tier" in letters[1]["reason"]
    assert letters[1]["record_index"] == 0 and letters[1]["offset"] == 1
    actions = wait(lambda: topic_reader(T.ACTIONS.full(kafka.topic_prefix)),
                   what="the rollback from the records after the garbage")
    assert json.loads(actions[0]["value"])["canary"]["p95_ms"] == 50.0


def test_http_edge_answers_4xx_with_reasons(kafka, start_collector, topic_reader, wait):
    url = start_collector().url
    bad_proto = httpx.post(f"{url}/v1/metrics", content=b"\xff\xff\xff",
                           headers={"content-type": "application/x-protobuf"})
    assert bad_proto.status_code == 400
    assert bad_proto.headers["content-type"] == "application/x-protobuf"
    from google.rpc import status_pb2
    status = status_pb2.Status.FromString(bad_proto.content)
    assert status.code == 3 and "protobuf" in status.message.lower()

    bad_json = httpx.post(f"{url}/v1/metrics", content=b"{not json",
                          headers={"content-type": "application/json"})
    assert bad_json.status_code == 400 and "json" in bad_json.json()["message"].lower()

    not_json = httpx.post(f"{url}/v1/inferences", content=b"[1, 2",
                          headers={"content-type": "application/json"})
    assert not_json.status_code == 400 and "not valid JSON" in not_json.json()["detail"]

    invalid = dict(batch("1", 10.0, 1)[0], latency_ms=-5, site="a/b")
    resp = httpx.post(f"{url}/v1/inferences", json={"records": [invalid]})
    assert resp.status_code == 400
    reasons = resp.json()["errors"][0]["reason"]
    assert "latency_ms" in reasons and "site" in reasons

    mixed = httpx.post(f"{url}/v1/inferences", json=[invalid, batch("1", 10.0, 1)[0]])
    assert mixed.status_code == 200 and mixed.json()["accepted"] == 1
    assert mixed.json()["errors"][0]["index"] == 0
    dead = wait(lambda: (m := topic_reader(T.DEADLETTER.full(kafka.topic_prefix)))
                and len(m) == 2 and m, what="both invalid records dead-lettered")
    assert all(json.loads(d["value"])["stage"] == "collector.inferences" for d in dead)


def test_retried_records_are_stored_once_and_served(kafka, start_collector, start_api, wait):
    collector = start_collector()
    api, store = start_api()
    first = batch("1", 10.0, 30)
    for attempt in (first, first[:10], first):  # a client retrying after lost answers
        assert httpx.post(f"{collector.url}/v1/inferences", json=attempt).status_code == 200
    no_id = {k: v for k, v in first[0].items() if k != "id"}
    for _ in range(2):  # no id: the derived content id makes the retry a duplicate too
        httpx.post(f"{collector.url}/v1/inferences", json=[no_id])
    wait(lambda: store.count_inferences() == 31, what="31 distinct records stored")
    page = httpx.get(f"{api.url}/inferences", params={"version": "1", "limit": 1000}).json()
    ids = [r["id"] for r in page["records"]]
    assert len(ids) == 31 and sorted(ids[:30]) == sorted(r["id"] for r in first)
    assert httpx.get(f"{api.url}/inferences", params={"site": "elsewhere"}).json()[
        "records"] == []


def test_large_exports_are_split_under_the_kafka_message_limit(kafka, start_collector,
                                                               topic_reader):
    from steward.demo import latency_request

    req = latency_request("1", "n1", [10.0] * 20, 1_000, 2_000)
    points = req.resource_metrics[0].scope_metrics[0].metrics[0].histogram.data_points
    for i in range(4999):          # 5,000 histogram points of one model/site: ~1.2 MB of JSON
        extra = points.add()
        extra.CopyFrom(points[0])
        extra.time_unix_nano = 3_000 + i
    resp = httpx.post(f"{start_collector().url}/v1/metrics", content=req.SerializeToString(),
                      headers={"content-type": "application/x-protobuf"}, timeout=60)
    assert resp.status_code == 200, resp.text
    msgs = topic_reader(T.METRICS.full(kafka.topic_prefix))
    assert len(msgs) >= 2 and all(len(m["value"]) <= kafka.max_message_bytes for m in msgs)
    assert sum(len(json.loads(m["value"])["records"]) for m in msgs) == 5000

    huge = dict(batch("1", 10.0, 1)[0], features={f"f{i}": "x" * 1000 for i in range(1000)})
    too_big = httpx.post(f"{start_collector().url}/v1/inferences", json=[huge])
    assert too_big.status_code == 413 and "message limit" in too_big.json()["detail"]
