"""The GPU loop on the real broker: DCGM text into the collector, the gpu-usage processor
as a consumer group, usage windows into a DuckDB file through the sink, one alert."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from api.app import create_app
from api.gpu import GpuUsageSink
from api.store import Store
from processors.gpu_usage import GpuSpec, GpuUsage
from steward import topics as T
from steward.schema import EventType
from tests.gpu_support import H100_UUID, exposition, h100_rows
from tests.support import Served

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def test_dcgm_text_to_usage_in_the_store_and_one_alert(kafka, start_collector, start_runner,
                                                       topic_reader, wait, services,
                                                       tmp_path: Path, shared_data: Path):
    store = Store(tmp_path / "steward.duckdb")
    services.append(store)
    app = create_app(store, CollectorRegistry(), {})
    start_runner(GpuUsageSink(app.state.gpu))
    start_runner(GpuUsage(GpuSpec(window_s=60, grace_s=0)))
    api = Served(app)
    services.append(api)
    url = start_collector().url
    resp = httpx.post(f"{url}/v1/gpu/dcgm", params={"site": "eu-west-1"},
                      content=exposition(h100_rows(), shared_data))
    assert resp.json()["accepted"] == 8
    parts = wait(lambda: (p := httpx.get(f"{api.url}/gpu/partitions").json()["partitions"])
                 and len(p) == 4 and p, timeout_s=30, what="4 partitions stored")
    assert {p["partition"] for p in parts} == {f"gpu-node-1/{H100_UUID}/mig{i}"
                                               for i in (1, 5, 9, 10)}
    alerts = wait(lambda: topic_reader(T.ALERTS.full(kafka.topic_prefix)), what="an alert")
    assert [(a["headers"]["ce_type"], a["headers"]["ce_subject"]) for a in alerts] == \
        [(EventType.GPU_MEMORY_PRESSURE, f"gpu-node-1/{H100_UUID}/mig5")]
    assert json.loads(alerts[0]["value"])["measured"] == 19800 / 20480
