"""POST /rollouts puts a validated declaration on the rollouts topic; GET answers from the
stored actions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from api.app import create_app
from api.sink import row_of
from api.store import Store
from processors.rollout import Rollouts
from steward.codec import decode_batch
from steward.schema.rollout import RolloutMessage
from steward.stream import Source
from tests.processors.test_rollout import SPEC, allow, closer, decl, interval, steps

BODY = {"rollout_id": "r9", "model": "fraud", "baseline_version": "1.0",
        "canary_version": "2.0", "targets": ["eu-west-1"],
        "steps": [{"traffic_pct": 10}, {"traffic_pct": 100}]}


@pytest.fixture
def app(tmp_path):
    store = Store(tmp_path / "steward.duckdb")
    app = create_app(store, CollectorRegistry(), {})
    yield app
    store.close()


def test_declaration_is_published_keyed_by_model(app):
    sent = []
    app.state.publish = sent.extend
    client = TestClient(app)
    r = client.post("/rollouts", json=BODY)
    assert r.status_code == 202 and r.json()["phase"] == "pending"
    (out,) = sent
    assert out.topic == "steward.rollouts.v1" and out.key == b"fraud"
    (msg,) = decode_batch(out.value, RolloutMessage).items
    assert msg.spec.rollout_id == "r9" and msg.spec.declared_at.tzinfo is not None
    bad = client.post("/rollouts", json={**BODY, "canary_version": "1.0"})
    assert bad.status_code == 400
    r = client.post("/rollouts/r9/abort", params={"model": "fraud", "reason": "x"})
    assert r.status_code == 202 and decode_batch(sent[1].value, RolloutMessage).items[0] \
        .command.command == "abort"


def test_without_a_producer_declaring_is_unavailable(app):
    assert TestClient(app).post("/rollouts", json=BODY).status_code == 503


def test_history_from_stored_actions(app):
    _, out = steps(Rollouts(), [decl(), *interval(0), *interval(1), closer(1)],
                       datetime(2026, 11, 23, tzinfo=UTC))
    store: Store = app.state.store
    store.insert_events([row_of(e, Source("steward.events.actions.v1", 0, i))
                         for i, e in enumerate(allow(out))])
    body = TestClient(app).get(f"/rollouts/{SPEC.rollout_id}").json()
    assert body["phase"] == "running"
    assert body["events"][0]["decisionid"].startswith("d-")
    assert TestClient(app).get("/rollouts/nope").status_code == 404


def test_a_registered_version_goes_on_the_rollouts_topic(app):
    sent = []
    app.state.publish = sent.extend
    client = TestClient(app)
    r = client.post("/models/fraud/versions", json={
        "version": "2.0", "retrain_trigger_id": "t1", "eval": {"auc": 0.95},
        "model_card": True})
    assert r.status_code == 202 and r.json()["retrain_trigger_id"] == "t1"
    (out,) = sent
    assert out.topic == "steward.rollouts.v1" and out.key == b"fraud"
    (msg,) = decode_batch(out.value, RolloutMessage).items
    assert msg.registered.version == "2.0" and msg.registered.eval == {"auc": 0.95}
    assert client.post("/models/fraud/versions", json={"eval": {}}).status_code == 400
