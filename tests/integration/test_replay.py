"""A processor that loses its memory (crash, rebalance) rebuilds open windows by replay:
the runner never commits past the first record an open window still needs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
from kafka.structs import TopicPartition

from processors.canary_latency import CanaryLatency, CanarySpec
from steward import topics as T

SPEC = CanarySpec(model="m", baseline_version="1", canary_version="2", factor=1.5,
                  window_s=10, grace_s=0, min_samples=5)
T0 = datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC)


def rec(version: str, ms: float, at: float) -> dict:
    return {"id": f"{version}-{at}", "model": "m", "version": version, "site": "s1",
            "tier": "edge", "ts": (T0 + timedelta(seconds=at)).isoformat(), "latency_ms": ms}


def test_open_window_survives_the_loss_of_processor_state(kafka, start_collector, start_runner,
                                                          start_gate, topic_reader, wait):
    url = f"{start_collector().url}/v1/inferences"
    group = f"{kafka.topic_prefix}canary"
    first = start_runner(CanaryLatency([SPEC]), group=group)
    start_gate()  # rollbacks pass the governance gate
    # first half of window 0: 10 baseline records, 4 canary records (too few to judge)
    httpx.post(url, json=[rec("1", 10.0, i * 0.1) for i in range(10)]).raise_for_status()
    httpx.post(url, json=[rec("2", 50.0, 1 + i * 0.1) for i in range(4)]).raise_for_status()
    inference = T.INFERENCE.full(kafka.topic_prefix)
    wait(lambda: sum(n for tp, n in first.positions.items() if tp.topic == inference) == 2,
         what="both messages processed")
    tp = next(tp for tp in first.positions if tp.topic == inference)
    wait(lambda: first.committed.get(tp) is not None, what="a commit")
    assert first.committed[tp] < first.positions[tp] and first.committed[tp] == 0
    first.stop()  # its windows are gone with it, as after a crash
    assert first.stopped.wait(15)

    # the rest of window 0 (4 more canary records) and a record that closes it
    httpx.post(url, json=[rec("2", 50.0, 2 + i * 0.1) for i in range(4)]
               + [rec("1", 10.0, 15.0)]).raise_for_status()
    start_runner(CanaryLatency([SPEC]), group=group)
    msgs = wait(lambda: topic_reader(T.ACTIONS.full(kafka.topic_prefix)), what="the rollback")
    data = json.loads(msgs[0]["value"])
    assert data["baseline"]["count"] == 10 and data["canary"]["count"] == 8
    assert isinstance(tp, TopicPartition)
