"""GET /gpu/partitions and GET /cost over a real DuckDB file: usage from the DCGM fixtures
through the usage processor, priced with the example catalogue, every dollar worked out
by hand (a 60 s window: an H100 minute is 7 $/h x 1/60 h, an A100 minute 3.5 $/h x 1/60 h)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from api.store import Store
from processors.gpu_usage import GpuSpec, GpuUsage
from steward import topics as T
from steward.gpu.dcgm import parse_text, to_samples
from steward.gpu.prices import Catalogue
from steward.schema import InferenceRecord
from steward.stream import run_steps
from tests.gpu_support import T0, a100_rows, exposition, h100_rows

REPO = Path(__file__).resolve().parents[2]
H100_MIN = 7.0 * 60 / 3600
A100_MIN = 3.5 * 60 / 3600


def r(x: float | None) -> float | None:
    return None if x is None else round(x, 12)


@pytest.fixture
def client(tmp_path: Path, shared_data: Path) -> TestClient:
    """GPU instance 10 (embed-1) is left out: 1/7 of the H100 is held by no partition."""
    rows = [row for row in h100_rows() if row[1].get("GPU_I_ID") != "10"] + a100_rows()
    samples = to_samples(parse_text(exposition(rows, shared_data)), T0,
                         {"site": "eu-west-1"}).samples
    _, emits = run_steps(GpuUsage(GpuSpec(window_s=60, grace_s=0)), samples,
                         T0 + timedelta(seconds=61))
    store = Store(tmp_path / "steward.duckdb")
    registry = CollectorRegistry()
    now = [T0 + timedelta(minutes=30)]  # the cost gauges look back an hour from here
    app = create_app(store, registry, {}, Catalogue.load(REPO / "config" / "gpu-prices.toml"),
                     gpu_cost_period=timedelta(hours=1), clock=lambda: now[0])
    app.state.test_now = now
    usage = [e.record for e in emits if e.topic is T.GPU_USAGE]
    assert app.state.gpu.insert(usage + usage) == 6  # stored once by id
    inferences = [InferenceRecord(model="fraud-detector", version="1.0", site="eu-west-1",
                                  tier="cloud", ts=T0 + timedelta(seconds=i % 60),
                                  latency_ms=5, sample_rate=0.5, id=f"i{i}")
                  for i in range(500)]  # 500 records standing for 1,000 inferences
    store.insert_inferences([(x, 0, i) for i, x in enumerate(inferences)])
    app.state.test_registry = registry
    yield TestClient(app)
    store.close()


RANGE = {"since": "2025-01-06T10:00:00Z", "until": "2025-01-06T11:00:00Z"}


def test_cost_by_team_with_idle_and_efficiency(client: TestClient) -> None:
    body = client.get("/cost", params=RANGE).json()
    assert body["group_by"] == ["team"]
    got = {g["team"]: g for g in body["groups"]}
    assert sorted(got) == ["assistants", "growth", "risk", "search"]
    risk = got["risk"]
    assert r(risk["allocated_usd"]) == r(H100_MIN * 3 / 7)  # 0.05 $
    assert r(risk["used_usd"]) == r(H100_MIN * 0.7 * 3 / 7)  # 0.035 $
    assert r(risk["idle_usd"]) == r(H100_MIN * 0.3 * 3 / 7)  # 0.015 $
    assert r(risk["efficiency"]) == 0.7
    assert r(risk["gpu_hours"]) == r(60 * 3 / 7 / 3600)
    assert r(got["assistants"]["efficiency"]) == 1.0
    assert r(got["search"]["used_usd"]) == r(H100_MIN * 0.2 / 7)
    growth = got["growth"]  # three copied replicas: the device's 50% counted once
    assert r(growth["allocated_usd"]) == r(A100_MIN)
    assert r(growth["used_usd"]) == r(A100_MIN * 0.5)
    assert r(body["__idle__"]["idle_usd"]) == r(H100_MIN / 7)  # instance 10's seventh, unheld


def test_cost_per_thousand_inferences_by_model(client: TestClient) -> None:
    body = client.get("/cost", params={**RANGE, "group_by": ["model", "site"]}).json()
    got = {g["model"]: g for g in body["groups"]}
    fraud = got["fraud-detector"]
    assert (fraud["site"], fraud["inferences"]) == ("eu-west-1", 1000.0)
    assert r(fraud["usd_per_1k_inferences"]) == r(H100_MIN * 3 / 7)  # 0.05 $ per 1,000
    assert got["chat"]["inferences"] is None and got["chat"]["usd_per_1k_inferences"] is None


def test_outside_the_range_costs_nothing(client: TestClient) -> None:
    body = client.get("/cost", params={"since": "2025-01-06T11:00:00Z",
                                       "until": "2025-01-06T12:00:00Z"}).json()
    assert body["groups"] == [] and body["__idle__"]["idle_usd"] == 0


def test_partitions_and_their_metrics(client: TestClient) -> None:
    parts = client.get("/gpu/partitions", params={"team": "risk"}).json()["partitions"]
    assert [(p["profile"], p["compute_use"], p["compute_share"]) for p in parts] == \
        [("3g.40gb", 0.7, 3 / 7)]
    assert len(client.get("/gpu/partitions").json()["partitions"]) == 6
    text = generate_latest(client.app.state.test_registry).decode()
    assert 'steward_gpu_partition_values_copied{card="A100-80GB"' in text
    line = next(x for x in text.splitlines()
                if x.startswith("steward_gpu_partition_compute_card_use_ratio") and "mig1" in x)
    assert float(line.rsplit(" ", 1)[1]) == 0.7 * (3 / 7)


def scrape(client: TestClient) -> dict[str, dict[tuple[str, ...], float]]:
    """GET /metrics through the app: family -> (label values in name order) -> value."""
    out: dict[str, dict[tuple[str, ...], float]] = {}
    for fam in text_string_to_metric_families(client.get("/metrics").text):
        for s in fam.samples:
            out.setdefault(s.name, {})[tuple(v for _, v in sorted(s.labels.items()))] = s.value
    return out


def test_cost_gauges_over_the_trailing_hour(client: TestClient) -> None:
    """Labels sort as kind, model, site, team, tier; every figure the /cost test's."""
    got = scrape(client)
    cost, held = got["steward_gpu_cost_usd"], got["steward_gpu_allocated_seconds"]
    fraud = ("fraud-detector", "eu-west-1", "risk", "cloud")
    assert {k: r(v) for k, v in cost.items() if k[1:] == fraud} == {
        ("allocated", *fraud): r(H100_MIN * 3 / 7),  # 0.05 $
        ("used", *fraud): r(H100_MIN * 0.7 * 3 / 7),  # 0.035 $
        ("idle", *fraud): r(H100_MIN * 0.3 * 3 / 7)}  # 0.015 $
    assert r(held[fraud]) == r(60 * 3 / 7)  # 3/7 of a card for 60 s
    assert r(got["steward_gpu_efficiency_ratio"][fraud]) == 0.7
    rec = ("recommender", "eu-west-1", "growth", "cloud")  # three copied replicas, once
    assert (r(cost[("allocated", *rec)]), r(cost[("used", *rec)])) == \
        (r(A100_MIN), r(A100_MIN * 0.5))
    assert (r(held[rec]), r(got["steward_gpu_efficiency_ratio"][rec])) == (60.0, 0.5)
    chat = ("chat", "eu-west-1", "assistants", "cloud")
    assert (r(cost[("idle", *chat)]), r(got["steward_gpu_efficiency_ratio"][chat])) == \
        (0.0, 1.0)
    embed = ("embedder", "eu-west-1", "search", "cloud")  # the 1g slice busy 20%
    assert (r(cost[("used", *embed)]), r(got["steward_gpu_efficiency_ratio"][embed])) == \
        (r(H100_MIN * 0.2 / 7), r(0.2))
    assert len(held) == 4 and len(cost) == 12
    assert sum(v for k, v in cost.items() if k[0] == "allocated") == pytest.approx(
        H100_MIN * 6 / 7 + A100_MIN)  # the H100's 7th unheld is not any team's
    assert r(got["steward_gpu_unallocated_cost_usd"][()]) == r(H100_MIN / 7)


def test_cost_gauges_forget_windows_older_than_the_period(client: TestClient) -> None:
    client.app.state.test_now[0] = T0 + timedelta(hours=1, seconds=1)
    got = scrape(client)
    assert "steward_gpu_cost_usd" not in got and "steward_gpu_allocated_seconds" not in got
    assert got["steward_gpu_unallocated_cost_usd"] == {(): 0.0}
    client.app.state.test_now[0] = T0  # a window starting now is not yet in the past
    assert "steward_gpu_cost_usd" not in scrape(client)


def test_a_range_is_required(client: TestClient) -> None:
    assert client.get("/cost").status_code == 422
