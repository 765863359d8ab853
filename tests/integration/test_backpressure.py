"""Backpressure: with the broker down the collector refuses (429/503 + Retry-After) instead
of accepting what it cannot hand to Kafka, and accepts again once the broker is back."""

from __future__ import annotations

import json

import httpx

from steward import topics as T
from steward.bus.admin import ensure_topics
from steward.settings import KafkaSettings


def rec(i: int) -> dict:
    return {"id": f"r{i}", "model": "m", "version": "1", "site": "s", "tier": "edge",
            "ts": "2026-11-23T10:00:00Z", "latency_ms": i}


def test_broker_down_means_retry_later_then_accepts_again(own_broker, start_collector,
                                                          topic_reader, wait):
    kafka = KafkaSettings(bootstrap_servers=own_broker.bootstrap_servers, ack_timeout_s=2)
    ensure_topics(kafka)
    url = f"{start_collector(kafka, retry_after_s=3).url}/v1/inferences"
    assert httpx.post(url, json=[rec(1)]).status_code == 200

    own_broker.stop()
    for i in (2, 3):
        down = httpx.post(url, json=[rec(i)], timeout=30)
        assert down.status_code in (429, 503), down.text
        assert down.headers["retry-after"] == "3"
        assert "Kafka" in down.json()["detail"]

    own_broker.start()            # same port, empty: the embedded broker keeps nothing
    ensure_topics(kafka)

    def accepted() -> bool:
        return httpx.post(url, json=[rec(4)], timeout=30).status_code == 200
    wait(accepted, timeout_s=30, what="the collector to accept again")
    msgs = topic_reader(T.INFERENCE.full(kafka.topic_prefix), kafka.bootstrap_servers)
    ids = {r["id"] for m in msgs for r in json.loads(m["value"])["records"]}
    assert "r4" in ids and not {"r2", "r3"} & ids   # refused records were never half-kept
