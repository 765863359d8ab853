"""The closed loop on real parts: a retraining request passes the real gate (shipped rules),
a version registered through the API answers it, the rollout processor proposes the
rollout and, once allowed, judges it on samples from the broker; its promotion passes the
promotion policy with the registered eval metrics and model card, and the audit lineage
of the promotion reaches back to the retraining request and its drift verdicts."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np

from processors.canary.autostart import RolloutTemplate
from processors.rollout import Rollouts, RolloutSettings
from steward import topics as T
from steward.bus.producer import Out, Producer
from steward.codec import JSON_HEADERS, encode_batch
from steward.schema import EventType, make_event, to_kafka
from steward.schema.drift import RetrainRequested, WindowRef
from steward.schema.rollout import VersionSamples

POLICY_DATA = {"residency": {"models": {"fraud": ["eu-west-1"]}, "sites": {
    "lyon": {"region": "eu-west-1", "allowed_regions": ["eu-west-1"]}}}}
TEMPLATE = RolloutTemplate(
    targets=["lyon"], tier="edge", steps=[{"sites": 1}], interval_s=60, grace_s=5,
    team="risk", target={"region": "eu-west-1", "tier": "cloud"}, estimated_usd=15,
    limits={"consecutive_successes": 2})
BASE = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
"""Event time of the rollout: ahead of the wall clock, so only samples close intervals."""


def buckets(k: int, version: str) -> list[VersionSamples]:
    """Interval k's six 10 s buckets of one version at lyon, healthy and alike."""
    out = []
    for b in range(6):
        at = BASE + timedelta(seconds=60 * k + 10 * b)
        rng = np.random.default_rng([k, b, zlib.crc32(version.encode())])
        out.append(VersionSamples(
            model="fraud", version=version, site="lyon", start=at,
            end=at + timedelta(seconds=10), records=100, inferences=100,
            latency_ms=rng.lognormal(3, 0.3, 100).tolist(), errors=1, labelled=100,
            correct=int((rng.random(100) < 0.9).sum())))
    return out


def test_drift_retrain_registration_rollout_promotion(kafka, start_api, start_gate,
                                                      start_runner, services, wait):
    api, _ = start_api()
    producer = Producer(kafka)
    services.append(producer)
    app = api.server.config.app  # the API process's producer, as api/main.py wires it
    app.state.publish, app.state.topic_prefix = producer.send_all, kafka.topic_prefix
    start_gate(POLICY_DATA, api.url)
    start_runner(Rollouts(RolloutSettings(templates={"fraud": TEMPLATE})))

    windows = [WindowRef(site="lyon", start="s", end="e", verdict_id=f"verdict-{i}",
                         drifted_columns=["amount"]) for i in (1, 2)]
    request = make_event(
        EventType.RETRAIN_REQUESTED, source="/steward/processors/retrain-trigger",
        subject="fraud/1.4.0", key="fraud", time=BASE - timedelta(hours=1), facts=("t",),
        data=RetrainRequested(
            model="fraud", version="1.4.0", trigger_id="trigger-1", sites=["lyon"],
            windows=windows, drifted_columns=["amount"], method="calibrated",
            rule="2 of 3", cooldown_s=3600, team="risk", target={"region": "eu-west-1"},
            evidence={"counts": {"retrain_requests_24h": 0}, "cost": {"estimated_usd": 5}}))
    producer.send_all([Out(T.PROPOSALS.full(kafka.topic_prefix), *to_kafka(request))])

    def stored(kind: str) -> list[dict]:
        return httpx.get(f"{api.url}/events", params={"type": kind}).json()["events"]

    wait(lambda: stored(EventType.RETRAIN_REQUESTED), what="the retraining request allowed")
    r = httpx.post(f"{api.url}/models/fraud/versions", json={
        "version": "1.5.0", "retrain_trigger_id": "trigger-1", "model_card": True,
        "eval": {"auc": 0.95, "accuracy": 0.93}, "registered_at": BASE.isoformat()})
    assert r.status_code == 202, r.text
    (started,) = wait(lambda: stored(EventType.ROLLOUT_STARTED), what="the rollout started")
    spec = started["data"]["spec"]
    assert (spec["baseline_version"], spec["canary_version"]) == ("1.4.0", "1.5.0")

    samples = [s for k in range(2) for v in ("1.4.0", "1.5.0") for s in buckets(k, v)]
    samples.append(buckets(2, "1.4.0")[1])  # past interval 1's end plus grace: closes it
    producer.send_all([Out(T.ROLLOUT_SAMPLES.full(kafka.topic_prefix), b"fraud",
                           encode_batch([s]), JSON_HEADERS) for s in samples])
    (promoted,) = wait(lambda: stored(EventType.MODEL_PROMOTED), timeout_s=60,
                       what="the promotion allowed by policy")
    data = promoted["data"]
    assert data["rollout_id"] == spec["rollout_id"] and data["version"] == "1.5.0"
    assert data["evidence"]["eval"] == {"auc": 0.95, "accuracy": 0.93}
    lineage = wait(lambda: (x := httpx.get(f"{api.url}/audit/actions/{promoted['id']}")
                            .json()).get("decision") and x, what="the promotion's decision")
    assert lineage["decision"]["decision"]["allowed"]
    ev = lineage["evidence"]
    assert (ev["kind"], ev["retrain_trigger_id"], ev["rollout_id"]) == (
        "loop", "trigger-1", spec["rollout_id"])
    assert ev["missing_verdicts"] == ["verdict-1", "verdict-2"]  # none judged in this test
