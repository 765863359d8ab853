"""GET /references/{model}/{version}/profile-spec: the spec edge agents profile to."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from api.app import create_app
from api.store import Store
from steward.profiles import ProfileSpec

CSV = ("amount,channel,score\n" + "".join(f"{i},{'pos' if i % 2 else 'web'},0.{i % 10}\n"
                                          for i in range(1, 11)) + ",pos,0.5\n").encode()


@pytest.fixture
def client(tmp_path):
    store = Store(tmp_path / "steward.duckdb")
    yield TestClient(create_app(store, CollectorRegistry(), {}))
    store.close()


def test_profile_spec_comes_from_the_stored_reference(client):
    resp = client.put("/references/fraud/1.4.0", content=CSV,
                      headers={"content-type": "text/csv"},
                      params={"categorical": ["channel"], "prediction": "score"})
    assert resp.status_code == 201, resp.text
    resp = client.get("/references/fraud/1.4.0/profile-spec")
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    assert doc["columns"]["amount"]["kind"] == "numerical"  # deciles of 1..10, null dropped
    assert doc["columns"]["amount"]["edges"] == pytest.approx(
        [1.9, 2.8, 3.7, 4.6, 5.5, 6.4, 7.3, 8.2, 9.1])
    assert doc["columns"]["channel"] == {"kind": "categorical"}
    assert (doc["prediction"], doc["kll_k"], doc["reservoir"]) == ("score", 1024, 256)
    spec = ProfileSpec.model_validate(doc)  # the spec_id it carries is checked
    assert doc["spec_id"] == spec.spec_id


def test_no_reference_no_spec(client):
    resp = client.get("/references/fraud/9.9.9/profile-spec")
    assert resp.status_code == 404
    assert "no reference for fraud 9.9.9" in resp.json()["detail"]
