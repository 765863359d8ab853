"""GPU samples through a real collector and broker: DCGM exporter text, OTLP gauges and
JSON batches arrive on the GPU topic keyed site/node; bad ones on the dead-letter topic
with their reason."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from steward import topics as T
from tests.gpu_support import (
    A100_UUID,
    H100_UUID,
    T0,
    a100_rows,
    exposition,
    h100_rows,
    otlp_json,
)

pytestmark = pytest.mark.integration


def records(kafka: Any, topic_reader: Callable, topic: T.Topic) -> list[tuple[str, dict]]:
    return [(m["key"], rec) for m in topic_reader(topic.full(kafka.topic_prefix))
            for rec in json.loads(m["value"])["records"]]


def dead(kafka: Any, topic_reader: Callable) -> list[dict]:
    return [json.loads(m["value"]) for m in topic_reader(T.DEADLETTER.full(kafka.topic_prefix))]


def test_dcgm_text_lands_on_the_gpu_topic(kafka, start_collector, topic_reader, wait,
                                          shared_data: Path) -> None:
    url = start_collector().url
    text = exposition(h100_rows() + a100_rows(), shared_data)
    resp = httpx.post(f"{url}/v1/gpu/dcgm", params={"site": "eu-west-1", "tier": "cloud"},
                      content=text, headers={"content-type": "text/plain; version=0.0.4"})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"accepted": 14, "rejected": 0, "ignored": 4, "errors": []}
    got = wait(lambda: (r := records(kafka, topic_reader, T.GPU)) and len(r) >= 14 and r,
               timeout_s=20, what="14 GPU samples")
    assert len(got) == 14
    assert {k for k, _ in got} == {"eu-west-1/gpu-node-1", "eu-west-1/gpu-node-2"}
    by_uuid = {r["gpu_uuid"] for _, r in got}
    assert by_uuid == {H100_UUID, A100_UUID}
    assert dead(kafka, topic_reader) == []


def test_bad_samples_are_dead_lettered_with_the_reason(kafka, start_collector, topic_reader,
                                                       wait, shared_data: Path) -> None:
    url = start_collector().url
    bad = [(n, {**lab, "GPU_I_PROFILE": "5g.50gb"}, v, ts) for n, lab, v, ts in h100_rows()[:4]]
    text = exposition(bad, shared_data)
    resp = httpx.post(f"{url}/v1/gpu/dcgm", params={"site": "eu-west-1"}, content=text)
    assert resp.status_code == 400
    assert "unknown MIG profile '5g.50gb' for H100-80GB" in resp.json()["errors"][0]["reason"]
    samples = [{"ts": T0.isoformat(), "site": "eu-west-1", "tier": "cloud", "node": "n1",
                "gpu_uuid": "GPU-1", "card": "A100-40GB", "profile": "1g.5gb", "instance_id": 7,
                "compute_active": 0.5},
               {"ts": T0.isoformat(), "site": "eu-west-1", "tier": "cloud", "node": "n1",
                "gpu_uuid": "GPU-1", "compute_active": -0.1},
               {"ts": T0.isoformat(), "site": "eu-west-1", "tier": "cloud", "node": "n1",
                "gpu_uuid": "GPU-1", "card": "A100-40GB", "power_watts": 5000}]
    resp = httpx.post(f"{url}/v1/gpu/samples", json={"records": samples})
    assert resp.status_code == 200
    assert [e["index"] for e in resp.json()["errors"]] == [1, 2]
    letters = wait(lambda: (d := dead(kafka, topic_reader)) and len(d) >= 3 and d,
                   timeout_s=20, what="3 dead letters")
    reasons = sorted((d["stage"], d["reason"]) for d in letters)
    assert reasons[0][0] == "collector.gpu.dcgm" and "5g.50gb" in reasons[0][1]
    assert reasons[1] == ("collector.gpu.samples",
                          "compute_active: Input should be greater than or equal to 0")
    assert reasons[2] == ("collector.gpu.samples",
                          "power 5000.0 W is absurd for a A100-40GB (TDP 400.0 W)")
    original = json.loads(base64.b64decode(letters[-1]["payload_b64"]))
    assert original["gpu_uuid"] == "GPU-1"
    [(_, ok)] = wait(lambda: records(kafka, topic_reader, T.GPU), what="the good sample")
    assert (ok["profile"], ok["instance_id"]) == ("1g.5gb", 7)


def test_otlp_gauges_become_gpu_samples(kafka, start_collector, topic_reader, wait) -> None:
    url = start_collector().url
    doc = otlp_json(a100_rows(), {"steward.site": "eu-west-1", "service.name": "scraper"})
    resp = httpx.post(f"{url}/v1/metrics", json=doc)
    assert resp.status_code == 200 and resp.json() == {}
    got = wait(lambda: (r := records(kafka, topic_reader, T.GPU)) and len(r) >= 6 and r,
               timeout_s=20, what="6 GPU samples")
    assert {(r["profile"], r["replicas"], r["pod"]) for _, r in got} == \
        {("timeslice", 3, p) for p in ("rec-0", "rec-1", "rec-2")}
    assert records(kafka, topic_reader, T.METRICS) == []
