"""Scale-out is Kafka's: two members of one consumer group split the (model, site) keys,
each key is judged by exactly one member, and `steward events tail` reads what they emit."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import httpx

from processors.canary_latency import CanaryLatency, CanarySpec

SPEC = CanarySpec(model="m", baseline_version="1", canary_version="2", factor=1.5,
                  window_s=10, grace_s=0, min_samples=5)
T0 = datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC)
SITES = [f"site-{i}" for i in range(12)]


def site_window(site: str) -> list[dict]:
    def rec(version: str, ms: float, at: float) -> dict:
        return {"model": "m", "version": version, "site": site, "tier": "edge",
                "ts": (T0 + timedelta(seconds=at)).isoformat(), "latency_ms": ms}
    return [rec("1", 10.0, i * 0.1) for i in range(10)] + \
        [rec("2", 40.0, i * 0.1) for i in range(10)] + [rec("1", 10.0, 12.0)]


def test_two_members_of_one_group_judge_each_site_once(kafka, start_collector, start_runner,
                                                       start_gate, topic_reader, wait):
    group = f"{kafka.topic_prefix}canary"
    start_gate()  # the rollbacks they propose pass the governance gate
    a = start_runner(CanaryLatency([SPEC]), group=group)
    b = start_runner(CanaryLatency([SPEC]), group=group)
    wait(lambda: a.assigned and b.assigned and len(a.assigned | b.assigned) == 16
         and not a.assigned & b.assigned, what="the group to settle on two members")
    collector = start_collector()
    records = [r for site in SITES for r in site_window(site)]
    assert httpx.post(f"{collector.url}/v1/inferences", json=records).json()["accepted"] == 252

    actions = f"{kafka.topic_prefix}steward.events.actions.v1"
    msgs = wait(lambda: (m := topic_reader(actions)) and len(m) >= len(SITES) and m,
                timeout_s=60, what="one rollback per site")
    sites = sorted(json.loads(m["value"])["site"] for m in msgs)
    assert sites == sorted(SITES)                     # every site once, none twice
    # both members did part of the work
    assert a.states and b.states and not set(a.states) & set(b.states)

    tail = subprocess.run(
        [sys.executable, "-m", "steward.cli", "events", "tail", "--bootstrap-servers",
         kafka.bootstrap_servers, "--topic-prefix", kafka.topic_prefix, "--from-beginning",
         "--count", str(len(SITES))], capture_output=True, text=True, timeout=60)
    assert tail.returncode == 0, tail.stderr
    lines = [json.loads(line) for line in tail.stdout.splitlines()]
    assert sorted(e["data"]["site"] for e in lines) == sorted(SITES)
    assert {e["type"] for e in lines} == {"steward.model.rolled_back"}
