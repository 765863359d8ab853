"""GET /fleet, /fleet/split, /fleet/savings and the steward_fleet_* gauges over a real
DuckDB file, for a period worked out by hand.

The period is [12:00, 13:00) on 2025-03-01, priced with config/gpu-prices.toml and
throughput 1,000 requests per GPU-hour (A100: 500):

- factory-berlin, edge, A100 edge amortised 17520 / (2 x 8760) + 0.4 kW x 0.25 = 1.10 $/h:
  40 records at rate 0.5 = 80 requests, 2 errors = 4, latency 1..40 ms;
  80 / 500 x 1.10 = 0.176 $.
- shop-lyon, edge, A100 (the default edge card) on-demand 3.50 $/h: 20 records = 20
  requests, no errors, latency 41..60 ms; 20 / 500 x 3.50 = 0.14 $.
- eu-west-1, cloud, H100 (the default cloud card) on-demand 7.00 $/h: 100 records (10 of
  them spilled over from factory-berlin), 5 errors, latency 101..200 ms;
  100 / 1000 x 7 = 0.70 $.

Edge: 100 requests (share 0.5), 4 errors (0.04); cloud 100 (0.5), 5 errors (0.05).
Spillover: 10 from factory-berlin, 10 / (100 edge + 10) of the edge sites' demand.
Latency (DuckDB quantile_cont, linear between ranks): edge 1..60: p50 = 30.5,
p95 = 57 + 0.05 = 57.05 (rank 59 x 0.95 = 56.05), p99 = 59.41 (rank 58.41);
cloud 101..200: p50 150.5, p95 195.05 (rank 94.05), p99 199.01 (rank 98.01).
Actual cost 0.176 + 0.14 + 0.70 = 1.016 $; cloud-only 200 / 1000 x 7 = 1.40 $;
saved 0.384 $ = 27.428571...%.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from api.fleet_split import SavingsSettings
from api.store import Store
from steward.gpu.prices import Catalogue
from steward.schema import InferenceRecord
from steward.schema.fleet import Expectation, FleetNode
from steward.schema.records import Hardware

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
PERIOD = {"since": "2025-03-01T12:00:00Z", "until": "2025-03-01T13:00:00Z"}
SETTINGS = SavingsSettings(requests_per_gpu_hour=1000,
                         card_requests_per_gpu_hour={"A100-80GB": 500})
A100 = Hardware(accelerator="A100-80GB", memory_bytes=80 * 10**9, runtime="triton")


def records() -> list[InferenceRecord]:
    def rec(i: int, site: str, tier: str, latency: float, **kw: Any) -> InferenceRecord:
        return InferenceRecord(id=f"r{i}", model="det", version="2.0", site=site, tier=tier,
                               ts=T0 + timedelta(seconds=i), latency_ms=latency, **kw)
    out = [rec(i, "factory-berlin", "edge", i + 1, sample_rate=0.5, hardware=A100,
               error=i < 2) for i in range(40)]
    out += [rec(100 + i, "shop-lyon", "edge", 41 + i) for i in range(20)]
    out += [rec(200 + i, "eu-west-1", "cloud", 101 + i, error=i < 5,
                spillover_from="factory-berlin" if i >= 90 else None) for i in range(100)]
    late = InferenceRecord(id="late", model="det", version="2.0", site="shop-lyon",
                           tier="edge", ts=T0 + timedelta(hours=1), latency_ms=1)
    other = InferenceRecord(id="other", model="churn", version="1", site="shop-lyon",
                            tier="edge", ts=T0, latency_ms=1)
    return [*out, late, other]


def node(name: str, site: str, state: str, as_of: datetime, **kw: Any) -> FleetNode:
    return FleetNode(model="det", site=site, node=name, tier="edge", state=state, as_of=as_of,
                     silence_s=0, first_seen=kw.pop("first_seen", T0), last_seen=T0,
                     versions=["2.0"], version_last_seen=kw.pop("version_last_seen",
                                                                {"2.0": T0}),
                     stale_after_s=60, offline_after_s=300, **kw)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    store = Store(tmp_path / "steward.duckdb")
    registry = CollectorRegistry()
    app = create_app(store, registry, {}, Catalogue.load(REPO / "config" / "gpu-prices.toml"),
                     clock=lambda: T0 + timedelta(hours=1), fleet=SETTINGS)
    store.insert_inferences([(r, 0, i) for i, r in enumerate(records())])
    app.state.test_registry = registry
    yield TestClient(app)
    store.close()


def test_split_of_a_hand_computed_period(client: TestClient) -> None:
    body = client.get("/fleet/split", params={**PERIOD, "model": "det"}).json()
    det = body["models"]["det"]
    assert list(body["models"]) == ["det"]
    edge, cloud = det["tiers"]["edge"], det["tiers"]["cloud"]
    assert (det["requests"], edge["requests"], cloud["requests"]) == (200, 100, 100)
    assert (edge["records"], cloud["records"]) == (60, 100)
    assert (edge["share"], cloud["share"]) == (0.5, 0.5)
    assert (edge["errors"], edge["error_rate"]) == (4, 0.04)
    assert (cloud["errors"], cloud["error_rate"]) == (5, 0.05)
    assert edge["latency_ms"] == pytest.approx({"p50": 30.5, "p95": 57.05, "p99": 59.41},
                                               rel=1e-12)
    assert cloud["latency_ms"] == pytest.approx({"p50": 150.5, "p95": 195.05, "p99": 199.01},
                                                rel=1e-12)
    assert det["spillover"] == {"factory-berlin": 10}
    assert det["spillover_share"] == pytest.approx(10 / 110, rel=1e-12)


def test_savings_of_a_hand_computed_period(client: TestClient) -> None:
    body = client.get("/fleet/savings", params=PERIOD).json()
    det = body["models"]["det"]
    assert det["actual_usd"] == pytest.approx(1.016, rel=1e-12)
    assert det["cloud_only_usd"] == pytest.approx(1.4, rel=1e-12)
    assert det["savings_usd"] == pytest.approx(0.384, rel=1e-12)
    assert det["savings_pct"] == pytest.approx(100 * 0.384 / 1.4, rel=1e-12)
    assert (det["requests"], det["unpriced_requests"]) == (200, 0)
    assert [(s["site"], s["card"]) for s in det["by_site"]] == [
        ("eu-west-1", "H100-80GB"), ("factory-berlin", "A100-80GB"), ("shop-lyon", "A100-80GB")]
    assert [(s["usd_per_gpu_hour"], s["usd"]) for s in det["by_site"]] == [
        (7.0, pytest.approx(0.7, rel=1e-12)), (pytest.approx(1.1, rel=1e-12),
                                               pytest.approx(0.176, rel=1e-12)),
        (3.5, pytest.approx(0.14, rel=1e-12))]
    a = body["assumptions"]
    assert a["period_hours"] == 1
    assert a["alternative"] == {"card": "H100-80GB", "flavour": "on-demand", "cloud": "aws",
                                "usd_per_gpu_hour": 7.0}
    assert a["requests_per_gpu_hour"] == {"A100-80GB": 500, "default": 1000}
    assert "churn" in body["models"]  # no model filter: every model


def test_inventory_keeps_the_newest_snapshot_and_the_earliest_first_seen(
        client: TestClient) -> None:
    fleet = client.app.state.fleet
    expected = Expectation(versions=["2.0"], kind="promoted", since=T0, event_id="e1",
                           event_type="steward.model.promoted", rollout_id="r1")
    fleet.upsert([node("n1", "shop-lyon", "online", T0, agent_backlog=3),
                  node("n2", "shop-lyon", "offline", T0),
                  node("b1", "factory-berlin", "online", T0, straggler=True,
                       expected=expected, hardware=A100)])
    fleet.upsert([node("n1", "shop-lyon", "stale", T0 + timedelta(minutes=2),
                       first_seen=T0 + timedelta(minutes=1)),
                  node("n2", "shop-lyon", "online", T0 - timedelta(minutes=1))])  # older
    body = client.get("/fleet", params={"model": "det"}).json()
    states = {n["node"]: n["state"] for n in body["nodes"]}
    assert states == {"b1": "online", "n1": "stale", "n2": "offline"}
    n1 = next(n for n in body["nodes"] if n["node"] == "n1")
    assert n1["first_seen"] == T0.isoformat()
    assert body["summary"]["det"] == {"nodes": 3, "online": 1, "stale": 1, "offline": 1,
                                      "offline_share": 1 / 3,
                                      "stragglers": ["factory-berlin"]}
    assert [n["node"] for n in client.get("/fleet", params={"state": "offline"}).json()[
        "nodes"]] == ["n2"]
    assert client.get("/fleet", params={"site": "factory-berlin"}).json()["nodes"][0][
        "hardware"]["accelerator"] == "A100-80GB"
    assert client.get("/fleet", params={"tier": "cloud"}).json()["nodes"] == []
    assert client.get("/fleet", params={"state": "asleep"}).status_code == 422


def test_gauges(client: TestClient) -> None:
    client.app.state.fleet.upsert([node("n1", "shop-lyon", "offline", T0, agent_backlog=12)])
    text = generate_latest(client.app.state.test_registry).decode()
    got = {(s.name, tuple(sorted(s.labels.items()))): s.value
           for f in text_string_to_metric_families(text) for s in f.samples
           if s.name.startswith("steward_fleet_")}

    def g(name: str, **labels: str) -> float:
        return got[(name, tuple(sorted(labels.items())))]
    assert g("steward_fleet_nodes", model="det", site="shop-lyon", tier="edge",
             state="offline") == 1
    assert g("steward_fleet_offline_ratio", model="det") == 1
    assert g("steward_fleet_agent_backlog_records", site="shop-lyon", node="n1") == 12
    assert g("steward_fleet_requests", model="det", tier="edge") == 100
    assert g("steward_fleet_request_share_ratio", model="det", tier="cloud") == 0.5
    assert g("steward_fleet_error_ratio", model="det", tier="cloud") == 0.05
    assert g("steward_fleet_latency_seconds", model="det", tier="cloud",
             quantile="0.5") == pytest.approx(0.1505)
    assert g("steward_fleet_spillover_requests", model="det", site="factory-berlin") == 10
    assert g("steward_fleet_cost_usd", model="det", scenario="actual") == pytest.approx(1.016)
    assert g("steward_fleet_savings_usd", model="det") == pytest.approx(0.384)
    assert g("steward_fleet_savings_ratio", model="det") == pytest.approx(0.384 / 1.4)


def test_cli_tables_from_the_api_answers(client: TestClient) -> None:
    from rich.console import Console

    from steward.fleet_cli import nodes_table, savings_table, split_table

    client.app.state.fleet.upsert([node("b1", "factory-berlin", "stale", T0, straggler=True,
                                        hardware=A100, agent_backlog=12)])

    def text(table: Any) -> str:
        console = Console(record=True, width=250)
        console.print(table)
        return console.export_text()
    nodes = text(nodes_table(client.get("/fleet").json()))
    assert "b1" in nodes and "2.0 (straggler)" in nodes and "A100-80GB triton" in nodes
    assert "det: 0 online, 1 stale, 0 offline (0%); stragglers at factory-berlin" in nodes
    split = text(split_table(client.get("/fleet/split", params=PERIOD).json()))
    assert "50.0%" in split and "199.0" in split and "4.00%" in split
    savings = text(savings_table(client.get("/fleet/savings", params=PERIOD).json()))
    assert "1.02" in savings and "1.40" in savings and "0.38" in savings and "27.4" in savings
    assert "vs H100-80GB on-demand (aws) at 7.00 $/GPU-h" in savings


def test_version_history_survives_a_processor_restart(client: TestClient) -> None:
    """Restarted, the processor knows only its recent versions: the store keeps the rest."""
    fleet = client.app.state.fleet
    old = {"1.0": T0 - timedelta(hours=2), "2.0": T0}
    fleet.upsert([node("n1", "shop-lyon", "online", T0, version_last_seen=old)])
    later = T0 + timedelta(minutes=5)
    fleet.upsert([node("n1", "shop-lyon", "online", later, version_last_seen={"2.0": later}),
                  node("n1", "shop-lyon", "online", later - timedelta(minutes=1),
                       version_last_seen={"0.9": T0})])  # out of order in the batch: ignored
    (n1,) = client.get("/fleet", params={"model": "det"}).json()["nodes"]
    assert n1["version_last_seen"] == {"1.0": "2025-03-01T10:00:00Z",
                                       "2.0": "2025-03-01T12:05:00Z"}
    assert n1["as_of"] == "2025-03-01T12:05:00Z" and n1["versions"] == ["2.0"]
