"""The gate's fleet facts from a real API (FastAPI app over a DuckDB file), and the shipped
fleet policy deciding on them: 1 of 2 nodes offline is 0.5 of the fleet, over
fraud-detector's 0.2 and at the default 0.5."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from api.app import create_app
from api.store import Store
from steward.governance.embedded import EmbeddedEngine
from steward.governance.fleet_facts import ApiFleetFacts
from steward.schema.fleet import FleetNode

RULES = Path(__file__).resolve().parents[2] / "rules"
T0 = datetime(2025, 3, 1, 12, tzinfo=UTC)


def node(model: str, name: str, state: str) -> FleetNode:
    return FleetNode(model=model, site="shop-lyon", node=name, tier="edge", state=state,
                     as_of=T0, silence_s=0, first_seen=T0, last_seen=T0, versions=["1"],
                     version_last_seen={"1": T0}, stale_after_s=60, offline_after_s=300)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TestClient]:
    store = Store(tmp_path / "steward.duckdb")
    app = create_app(store, CollectorRegistry(), {})
    app.state.fleet.upsert([node("fraud-detector", "n1", "online"),
                            node("fraud-detector", "n2", "offline"),
                            node("churn", "c1", "offline"), node("churn", "c2", "online")])
    yield TestClient(app)
    store.close()


def promotion(model: str) -> dict:
    doc = json.loads((RULES / "examples" / "promotion_allow.json").read_text())["input"]
    doc["action"]["model"] = model
    return doc


def test_offline_share_added_and_judged(api: TestClient) -> None:
    facts = ApiFleetFacts("http://testserver", client=api)
    doc = facts(promotion("fraud-detector"))
    assert doc["evidence"]["fleet"] == {"nodes": 2, "offline": 1, "offline_share": 0.5}
    result = EmbeddedEngine(RULES).evaluate("steward/gate/decision", doc).result
    assert result["deny"] == ["fleet: 0.5 of the fraud-detector fleet is offline (1 of 2 "
                              "nodes), over the limit 0.2"]
    churn = facts(promotion("churn"))  # at the default limit of 0.5: not over
    assert "fleet" in EmbeddedEngine(RULES).evaluate("steward/gate/decision",
                                                     churn).result["rules"]
    assert not any(r.startswith("fleet:") for r in EmbeddedEngine(RULES).evaluate(
        "steward/gate/decision", churn).result["deny"])


def test_nothing_added_without_nodes_an_answer_or_a_promotion(api: TestClient) -> None:
    facts = ApiFleetFacts("http://testserver", client=api)
    assert "fleet" not in facts(promotion("unknown-model"))["evidence"]
    rollback = {"action": {"type": "steward.model.rolled_back", "model": "churn"}}
    assert facts(rollback) == rollback
    own = promotion("churn") | {"evidence": {"fleet": {"offline_share": 0}}}
    assert facts(own) == own  # the proposal's own figure stands
    down = ApiFleetFacts("http://127.0.0.1:9")  # nothing listens on the discard port
    assert "fleet" not in down(promotion("churn"))["evidence"]
