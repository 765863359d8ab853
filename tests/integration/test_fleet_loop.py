"""The fleet loop on the real broker: inference records from edge and cloud nodes through
the collector, `fleet-sightings` and `fleet` as consumer groups, node snapshots and alerts
stored by the API's sinks in a DuckDB file.

Timeline (wall clock, short configured silences; record times are the wall clock at post):
- every node reports 1.0 (lyon n1 with its hardware, lyon n2, berlin b1), the cloud node
  c1 serves 2.0 and one of its records is berlin's spillover;
- lyon n2 falls silent; a promotion of 2.0 at lyon and berlin is published on the actions
  topic as the rollout processor publishes it (after the gate);
- lyon n1 switches to 2.0, berlin b1 keeps 1.0: a straggler, alerted once;
- n2 goes stale, then offline, while the others keep reporting.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from api.fleet import FleetNodeSink, FleetStore
from processors.fleet import Fleet, FleetSpec
from processors.fleet_sightings import FleetSightings, SightingsSpec
from steward import topics as T
from steward.bus.producer import Out, Producer
from steward.schema import EventType, make_event, to_kafka
from steward.schema.rollout import RolloutAction

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]
SPEC = FleetSpec(stale_after_s=6, offline_after_s=12, straggler_grace_s=0, snapshot_s=1)
HARDWARE = {"accelerator": "A100-80GB", "memory_bytes": 85_899_345_920,
            "runtime": "onnxruntime-1.18", "quantisation": "int8"}
NODES = {  # (site, node): (tier, extra fields)
    ("lyon", "n1"): ("edge", {"hardware": HARDWARE}),
    ("lyon", "n2"): ("edge", {}),
    ("berlin", "b1"): ("edge", {}),
    ("eu-cloud", "c1"): ("cloud", {}),
}


class Fleetsim:
    """Posts records to the collector, as the nodes would, counting them per tier."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ids = itertools.count()
        self.tiers: Counter[str] = Counter()
        self.last = 0.0

    def post(self, nodes: dict[tuple[str, str], str], **extra: Any) -> None:
        """One record per (site, node) at version `nodes[...]`, record time now."""
        now = datetime.now(UTC).isoformat()
        records = []
        for (site, node), version in nodes.items():
            tier, fields = NODES[(site, node)]
            records.append({"id": f"r{next(self.ids)}", "model": "det", "version": version,
                            "site": site, "tier": tier, "node": node, "ts": now,
                            "latency_ms": 20.0 if tier == "edge" else 60.0, **fields,
                            **extra})
            self.tiers[tier] += 1
        resp = httpx.post(f"{self.url}/v1/inferences", json={"records": records})
        assert resp.status_code == 200 and resp.json()["accepted"] == len(records), resp.text
        self.last = time.monotonic()

    def beat(self, nodes: dict[tuple[str, str], str]) -> None:
        """Post again when the last post is half a second old (called from polls)."""
        if time.monotonic() - self.last >= 0.5:
            self.post(nodes)


def test_fleet_states_split_and_one_straggler_alert(kafka, start_collector, start_api,
                                                     start_runner, services, wait):
    api, store = start_api()
    start_runner(FleetNodeSink(FleetStore(store)))
    start_runner(FleetSightings(SightingsSpec(bucket_s=1, grace_s=0.2)))
    start_runner(Fleet(SPEC))
    sim = Fleetsim(start_collector().url)

    def fleet() -> dict[str, dict[str, Any]]:
        body = httpx.get(f"{api.url}/fleet", params={"model": "det"}).json()
        return {f"{n['site']}/{n['node']}": n for n in body["nodes"]}

    before = {key: "2.0" if key[0] == "eu-cloud" else "1.0" for key in NODES}
    sim.post(before)
    sim.post({("eu-cloud", "c1"): "2.0"}, spillover_from="berlin")

    def all_online() -> dict[str, dict[str, Any]] | None:
        sim.beat(before)
        nodes = fleet()
        return nodes if len(nodes) == 4 and all(
            n["state"] == "online" for n in nodes.values()) else None

    nodes = wait(all_online, timeout_s=15, what="four nodes online")
    assert {k: (n["tier"], n["versions"]) for k, n in nodes.items()} == {
        "lyon/n1": ("edge", ["1.0"]), "lyon/n2": ("edge", ["1.0"]),
        "berlin/b1": ("edge", ["1.0"]), "eu-cloud/c1": ("cloud", ["2.0"])}
    assert nodes["lyon/n1"]["hardware"] == HARDWARE
    assert nodes["lyon/n2"]["hardware"] is None

    promoted_at = datetime.now(UTC)  # after every 1.0 record of lyon: none is a straggler
    time.sleep(0.05)
    action = make_event(
        EventType.MODEL_PROMOTED, source="/steward/processors/rollout", subject="det/r1",
        key="det", time=promoted_at, facts=("r1", "promoted"),
        data=RolloutAction(rollout_id="r1", model="det", baseline_version="1.0",
                           canary_version="2.0", version="2.0", phase="promoted", step=1,
                           sites=["lyon", "berlin"], reason="last step passed"))
    producer = Producer(kafka)
    services.append(producer)
    producer.send_all([Out(T.ACTIONS.full(kafka.topic_prefix), *to_kafka(action))])

    after = {("lyon", "n1"): "2.0", ("berlin", "b1"): "1.0", ("eu-cloud", "c1"): "2.0"}

    def settled() -> dict[str, dict[str, Any]] | None:
        sim.beat(after)  # n2 says nothing more
        nodes = fleet()
        want = {"lyon/n1": ("online", ["2.0"], False), "lyon/n2": ("offline", ["1.0"], False),
                "berlin/b1": ("online", ["1.0"], True),
                "eu-cloud/c1": ("online", ["2.0"], False)}
        got = {k: (n["state"], n["versions"], n["straggler"]) for k, n in nodes.items()}
        return nodes if got == want else None

    nodes = wait(settled, timeout_s=30, what="n2 offline, n1 on 2.0, b1 a straggler")
    assert nodes["lyon/n2"]["silence_s"] >= SPEC.offline_after_s
    assert nodes["berlin/b1"]["expected"]["versions"] == ["2.0"]
    assert nodes["berlin/b1"]["expected"]["event_id"] == action.get_id()
    assert nodes["eu-cloud/c1"]["expected"] is None

    def stragglers() -> list[dict[str, Any]]:
        return httpx.get(f"{api.url}/events",
                         params={"type": EventType.FLEET_STRAGGLER}).json()["events"]

    (alert,) = wait(stragglers, timeout_s=10, what="the straggler alert stored")
    assert alert["subject"] == "det/berlin"
    assert alert["data"]["observed_versions"] == ["1.0"]
    assert alert["data"]["expected_versions"] == ["2.0"]
    assert alert["data"]["nodes"] == ["b1"] and alert["data"]["episode"] == 1
    assert wait(lambda: httpx.get(f"{api.url}/events", params={
        "type": EventType.MODEL_PROMOTED}).json()["events"], what="the promotion stored")

    def split() -> dict[str, Any] | None:
        det = httpx.get(f"{api.url}/fleet/split", params={"model": "det"}).json()[
            "models"].get("det")
        got = {t: v["records"] for t, v in (det or {}).get("tiers", {}).items()}
        return det if got == dict(sim.tiers) else None

    det = wait(split, timeout_s=10, what=f"split counts {dict(sim.tiers)}")
    assert det["spillover"] == {"berlin": 1.0}
    assert det["tiers"]["edge"]["share"] == sim.tiers["edge"] / sum(sim.tiers.values())
    assert det["tiers"]["edge"]["latency_ms"]["p50"] == 20.0
    assert det["tiers"]["cloud"]["latency_ms"]["p50"] == 60.0
    # b1 kept reporting 1.0 all along: still one episode, one alert
    assert len(stragglers()) == 1
