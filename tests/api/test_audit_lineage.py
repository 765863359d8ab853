"""Audit lineage end to end on real parts: the gate decides real proposals (its engine
answers from a script: the engine interface, not a server), the sinks store decisions,
events and drift verdicts in a real DuckDB file, and GET /audit/actions/{id} puts the
action, its decision and the evidence behind it back together. Admin scope only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from api.app import create_app
from api.decisions import DecisionSink
from api.sink import EventSink
from api.store import Store
from api.verdicts import VerdictSink
from steward import topics as T
from steward.auth import Authenticator, new_token
from steward.governance.engine import Evaluation
from steward.governance.gate import Gate
from steward.governance.masking import mask
from steward.schema import EventType, make_event, to_json
from steward.schema.drift import (
    ColumnDrift,
    DatasetDrift,
    DriftVerdict,
    RetrainRequested,
    WindowRef,
)
from steward.schema.events import LatencyStats, ModelRolledBack, Window
from steward.stream import Source

T0 = datetime(2026, 11, 23, 12, tzinfo=UTC)
ADMIN, ADMIN_SPEC = new_token("auditor", ["admin"], None)
READER, READER_SPEC = new_token("dashboard", ["read"], None)
AUTH = {"Authorization": f"Bearer {ADMIN}"}


class ByModel:
    """Allows everything except actions on model `risk`."""

    name = "embedded"
    revision = "rev-1"

    def evaluate(self, path: str, input: dict[str, Any]) -> Evaluation:
        denied = input["action"].get("model") == "risk"
        result = {"allow": not denied, "deny": ["risk models need a human"] if denied else []}
        return Evaluation(path, result, self.revision, "embedded", 0.4)


def verdict(i: int, model: str, site: str) -> DriftVerdict:
    start = T0 + timedelta(minutes=5 * i)
    col = ColumnDrift(column="amount", kind="numerical", stattest="ks", threshold=0.05,
                      score=0.001, drifted=True, reference_rows=1000, current_rows=200)
    ds = DatasetDrift(method="evidently", columns=[col], drifted_columns=["amount"], share=1.0,
                      drift_share=0.5, dataset_drift=True)
    return DriftVerdict(id=f"{model}-{site}-{i}", model=model, version="1.4.0", site=site,
                        window=Window(start=start, end=start + timedelta(minutes=5)), rows=200,
                        evidently=ds, decided_by="evidently", drift=True)


def retrain(model: str, verdicts: list[DriftVerdict]):
    data = RetrainRequested(
        model=model, version="1.4.0", trigger_id=f"t-{model}", sites=[verdicts[0].site],
        windows=[WindowRef(site=v.site, start=v.window.start.isoformat(),
                           end=v.window.end.isoformat(), verdict_id=v.id,
                           drifted_columns=["amount"]) for v in verdicts],
        drifted_columns=["amount"], method="evidently", rule="2 of 3", cooldown_s=60)
    return make_event(EventType.RETRAIN_REQUESTED, source="/steward/processors/retrain-trigger",
                      subject=f"{model}/1.4.0", data=data, key=model, time=T0, facts=(model,))


def rollback():
    window = Window(start=T0, end=T0 + timedelta(minutes=1))
    data = ModelRolledBack(
        model="fraud", site="eu-west-1", canary_version="1.5.0", baseline_version="1.4.0",
        check="p95_ratio", reason="canary p95 90.0 ms is 3.00x baseline", window=window,
        baseline=LatencyStats(version="1.4.0", count=900, p95_ms=30.0, method="samples"),
        canary=LatencyStats(version="1.5.0", count=100, p95_ms=90.0, method="samples"),
        ratio=3.0, threshold=1.5, min_samples=50)
    return make_event(EventType.MODEL_ROLLED_BACK, source="/steward/processors/canary-latency",
                      subject="fraud/eu-west-1", data=data, key="fraud", time=T0,
                      facts=("fraud", "1.5.0"))


@pytest.fixture
def world(tmp_path):
    """Two fraud verdicts and a retrain naming them (allowed), a rollback (allowed), a
    risk retrain (denied); decisions, events and verdicts stored by their sinks."""
    store = Store(tmp_path / "steward.duckdb")
    app = create_app(store, CollectorRegistry(), {},
                     auth=Authenticator([ADMIN_SPEC, READER_SPEC]))
    gate = Gate(ByModel(), mask, masked_fields=["/data/trigger_id", "/nothing/here"])
    fraud = [verdict(1, "fraud", "berlin"), verdict(2, "fraud", "berlin")]
    risk = [verdict(1, "risk", "lyon")]
    proposals = [retrain("fraud", fraud), rollback(), retrain("risk", risk)]
    outcomes = [gate.decide(p, T0 + timedelta(seconds=i)) for i, p in enumerate(proposals)]
    VerdictSink(app.state.verdicts).write([(v, Source(T.DRIFT_VERDICTS.name, 0, i))
                                           for i, v in enumerate(fraud + risk)])
    DecisionSink(app.state.decisions).write([(o.decision, Source(T.DECISIONS.name, 0, i))
                                             for i, o in enumerate(outcomes)])
    EventSink(store).write([(o.event, Source(T.ACTIONS.name, 0, i))
                            for i, o in enumerate(outcomes)])
    yield TestClient(app), proposals, outcomes, fraud
    store.close()


def test_an_allowed_retrain_leads_back_to_its_decision_and_drift_verdicts(world):
    client, proposals, outcomes, fraud = world
    action = outcomes[0].event
    got = client.get(f"/audit/actions/{action.get_id()}", headers=AUTH).json()
    assert action.get_id() == proposals[0].get_id()
    assert got["event"] == to_json(action) and got["event"]["decisionid"] == \
        outcomes[0].decision.decision_id
    assert got["decision"]["seq"] == 1
    logged = got["decision"]["decision"]
    assert logged == outcomes[0].decision.model_dump(mode="json", by_alias=True)
    assert (logged["path"], logged["revision"], logged["allowed"]) == \
        ("steward/gate/decision", "rev-1", True)
    assert logged["input"]["data"]["trigger_id"] == "***"
    assert logged["masked"] == ["/data/trigger_id"]
    assert got["denial"] is None
    assert got["evidence"] == {
        "kind": "drift", "missing_verdicts": [], "canary": None,
        "retrain_trigger_id": None, "rollout_id": None, "runs": [],
        "verdicts": [v.model_dump(mode="json", by_alias=True) for v in fraud]}
    assert got["evidence"]["verdicts"][0]["evidently"]["columns"][0]["score"] == 0.001
    assert got["complete"] is True


def test_a_rollback_carries_its_canary_window_and_stats(world):
    client, proposals, _, _ = world
    got = client.get(f"/audit/actions/{proposals[1].get_id()}", headers=AUTH).json()
    data = proposals[1].get_data()
    assert got["evidence"]["kind"] == "canary" and got["evidence"]["verdicts"] == []
    assert got["evidence"]["canary"] == {k: data[k] for k in (
        "check", "reason", "window", "baseline", "canary", "ratio", "threshold",
        "min_samples", "site", "canary_version", "baseline_version")}
    assert got["decision"]["seq"] == 2 and got["complete"] is True


def test_a_denied_proposal_is_found_by_its_id_or_its_denial(world):
    client, proposals, outcomes, _ = world
    denial = outcomes[2].event
    assert denial.get_type() == EventType.ACTION_DENIED
    by_proposal = client.get(f"/audit/actions/{proposals[2].get_id()}", headers=AUTH).json()
    by_denial = client.get(f"/audit/actions/{denial.get_id()}", headers=AUTH).json()
    for got in (by_proposal, by_denial):
        assert got["event"] is None and got["denial"] == to_json(denial)
        assert got["proposal_id"] == proposals[2].get_id()
        assert got["decision"]["decision"]["reasons"] == ["risk models need a human"]
        assert [v["id"] for v in got["evidence"]["verdicts"]] == ["risk-lyon-1"]
        assert got["complete"] is True


def test_missing_evidence_makes_lineage_incomplete_and_unknown_ids_404(world, tmp_path):
    client, proposals, _, _ = world
    with client.app.state.store.cursor() as cur:
        cur.execute("DELETE FROM drift_verdicts WHERE id = 'fraud-berlin-2'")
    got = client.get(f"/audit/actions/{proposals[0].get_id()}", headers=AUTH).json()
    assert got["evidence"]["missing_verdicts"] == ["fraud-berlin-2"]
    assert got["complete"] is False
    resp = client.get("/audit/actions/nope", headers=AUTH)
    assert resp.status_code == 404 and resp.json()["code"] == "not_found"


def test_decisions_filter_by_model_site_outcome_and_time(world):
    client, proposals, _, _ = world

    def ids(**params: Any) -> list[str]:
        page = client.get("/audit/decisions", params=params, headers=AUTH).json()
        return [d["proposal_id"] for d in page["decisions"]]

    p = [e.get_id() for e in proposals]
    assert ids() == p
    assert ids(model="fraud") == p[:2]
    assert ids(site="eu-west-1") == [p[1]] and ids(site="lyon") == [p[2]]
    assert ids(allowed="false") == [p[2]] and ids(allowed="true") == p[:2]
    assert ids(since=(T0 + timedelta(seconds=1)).isoformat(),
               until=(T0 + timedelta(seconds=2)).isoformat()) == [p[1]]
    first = client.get("/audit/decisions", params={"limit": 2}, headers=AUTH).json()
    assert first["has_more"] and first["next_after"] == 2
    assert ids(after=2) == [p[2]]


def test_every_audit_route_needs_the_admin_scope(world):
    client, proposals, _, _ = world
    routes = sorted((path, method.upper()) for path, ops in client.app.openapi()["paths"].items()
                    for method in ops if path.startswith("/audit"))
    assert routes == [("/audit/actions/{action_id}", "GET"), ("/audit/decisions", "GET"),
                      ("/audit/query", "POST"), ("/audit/verify", "GET")]
    for path, method in routes:
        url = path.replace("{action_id}", proposals[0].get_id())
        body = {"json": {"sql": "SELECT 1"}} if method == "POST" else {}
        none = client.request(method, url, **body)
        reader = client.request(method, url, headers={"Authorization": f"Bearer {READER}"},
                                **body)
        admin = client.request(method, url, headers=AUTH, **body)
        assert (none.status_code, none.json()["code"]) == (401, "missing_token")
        assert (reader.status_code, reader.json()["code"]) == (403, "missing_scope")
        assert admin.status_code == 200, (path, admin.text)


def test_a_loop_rollouts_action_reaches_back_to_its_drift_verdicts():
    from api.audit import evidence

    class Verdicts:
        def get(self, i: str) -> dict[str, Any] | None:
            return {"id": i} if i == "v1" else None

    data = {"rollout_id": "fraud-2.0-x", "retrain_trigger_id": "t1",
            "drift_verdict_ids": ["v1", "v2"], "run": {"run_id": "r"}}
    got = evidence(EventType.MODEL_PROMOTED, data, Verdicts())  # type: ignore[arg-type]
    assert got == {"kind": "loop", "verdicts": [{"id": "v1"}], "missing_verdicts": ["v2"],
                   "canary": {"run_id": "r"}, "retrain_trigger_id": "t1",
                   "rollout_id": "fraud-2.0-x", "runs": []}  # no run store given
