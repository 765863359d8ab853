"""A new owner replays what open windows hold, but emits nothing the old owner emitted:
the runner's emitted marks (steward/bus/marks.py) on the real embedded broker."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
from kafka.structs import TopicPartition

from processors.canary_latency import CanaryLatency, CanarySpec
from steward import topics as T

SPEC = CanarySpec(model="m", baseline_version="1", canary_version="2", factor=1.5,
                  window_s=10, grace_s=0, min_samples=5)
# an hour ahead: only the watermark closes a window, never the wall clock
T0 = (datetime.now(UTC) + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)


def rec(site: str, version: str, ms: float, at: float) -> dict:
    return {"id": f"{site}-{version}-{at}", "model": "m", "version": version, "site": site,
            "tier": "edge", "ts": (T0 + timedelta(seconds=at)).isoformat(), "latency_ms": ms}


def test_replay_after_a_crash_rebuilds_windows_without_emitting_again(
        kafka, start_collector, start_runner, topic_reader, wait):
    url = f"{start_collector().url}/v1/inferences"
    group = f"{kafka.topic_prefix}canary"
    first = start_runner(CanaryLatency([SPEC]), group=group)
    # site a: window 0 regresses and is closed by a record of window 1, which stays open and
    # holds the commit back to this very message; site b (another key): window 0 half full
    judged = ([rec("a", "1", 10.0, i * 0.1) for i in range(10)]
              + [rec("a", "2", 50.0, i * 0.1) for i in range(10)] + [rec("a", "1", 10.0, 15)])
    httpx.post(url, json=judged).raise_for_status()
    httpx.post(url, json=[rec("b", "1", 10.0, i * 0.1) for i in range(10)]
               + [rec("b", "2", 50.0, i * 0.1) for i in range(4)]).raise_for_status()
    proposals = T.PROPOSALS.full(kafka.topic_prefix)
    wait(lambda: topic_reader(proposals), what="site a's rollback")
    inference = T.INFERENCE.full(kafka.topic_prefix)
    wait(lambda: sum(p for tp, p in first.positions.items() if tp.topic == inference) == 2,
         what="both messages handled")
    reached = dict(first.positions)
    # the runner sets positions before it delivers and commits the batch: wait for that
    wait(lambda: all(tp in first.committed for tp in reached), what="the batch committed")
    assert all(first.committed[tp] < p for tp, p in reached.items())  # held back
    first.stop()  # its windows and what it fired are gone, as after a crash
    assert first.stopped.wait(15)

    httpx.post(url, json=[rec("b", "2", 50.0, 1 + i * 0.1) for i in range(6)]
               + [rec("b", "1", 10.0, 15)]).raise_for_status()
    second = start_runner(CanaryLatency([SPEC]), group=group)
    msgs = wait(lambda: (m := topic_reader(proposals)) and len(m) >= 2 and m,
                what="site b's rollback")
    wait(lambda: sum(p for tp, p in second.positions.items() if tp.topic == inference) >= 2,
         what="the replay")
    msgs = topic_reader(proposals)
    sites = sorted(json.loads(m["value"])["site"] for m in msgs)
    assert sites == ["a", "b"]  # a's rollback is not emitted again by the replay
    assert all(second.replay_below[tp] == p for tp, p in reached.items()
               if isinstance(tp, TopicPartition) and tp in second.replay_below)
