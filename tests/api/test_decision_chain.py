"""The decision log's hash chain on a real DuckDB file: stored once, chained, and any
edit, removal or reordering found by `steward audit verify` and GET /audit/verify."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import duckdb
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from api.app import create_app
from api.decisions import GENESIS, DecisionSink, DecisionStore
from api.store import Store
from steward.audit_cli import audit_app
from steward.schema.governance import Decision
from steward.stream import Source

T0 = datetime(2026, 11, 23, 12, tzinfo=UTC)


def decision(i: int, allowed: bool = True, site: str = "berlin", model: str = "fraud",
             revision: str = "rev-1") -> Decision:
    return Decision(
        decision_id=f"d{i}", path="steward/gate/decision",
        input={"action": {"type": "steward.retrain.requested", "id": f"p{i}", "model": model,
                          "sites": [site]}, "evidence": {}, "data": {"owner": "***"}},
        masked=["/data/owner"], result={"allow": allowed, "deny": [] if allowed else ["no"]},
        allowed=allowed, reasons=[] if allowed else ["no"], revision=revision,
        engine="embedded", timestamp=T0 + timedelta(minutes=i), proposal_id=f"p{i}",
        proposal_type="steward.retrain.requested", proposal_source="/p", model=model,
        version="1.4.0")


def src(offset: int) -> Source:
    return Source("steward.governance.decisions.v1", 0, offset)


@pytest.fixture
def path(tmp_path):
    """A store file holding decisions d1..d5 (seq 1..5), closed again."""
    db = tmp_path / "steward.duckdb"
    store = Store(db)
    DecisionSink(DecisionStore(store)).write([(decision(i), src(i)) for i in range(1, 6)])
    store.close()
    return db


def verify_cli(db) -> tuple[int, dict]:
    result = CliRunner().invoke(audit_app, ["verify", "--db", str(db)])
    return result.exit_code, json.loads(result.stdout)


def test_each_hash_covers_the_previous_hash_and_the_canonical_decision(path):
    conn = duckdb.connect(str(path), read_only=True)
    rows = conn.execute("SELECT seq, prev_hash, hash, decision FROM decisions ORDER BY seq"
                        ).fetchall()
    conn.close()
    assert [r[0] for r in rows] == [1, 2, 3, 4, 5]
    prev = GENESIS
    for i, (_, prev_hash, hashed, text) in enumerate(rows, start=1):
        doc = decision(i).model_dump(mode="json", by_alias=True)
        canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert text == canonical and prev_hash == prev
        assert hashed == hashlib.sha256((prev + canonical).encode("utf-8")).hexdigest()
        prev = hashed
    code, report = verify_cli(path)
    assert code == 0
    assert report == {"ok": True, "checked": 5, "head_seq": 5, "head_hash": prev,
                      "broken_seq": None, "problem": None, "detail": None}


def test_redelivered_decisions_are_stored_once_and_keep_the_chain(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    decisions = DecisionStore(store)
    assert decisions.insert([(decision(1), src(1)), (decision(2), src(2)),
                             (decision(1), src(1))]) == 2
    assert decisions.insert([(decision(2), src(2)), (decision(3), src(3))]) == 1
    report = decisions.verify()
    store.close()
    assert (report.ok, report.checked, report.head_seq) == (True, 3, 3)


def _edit_json(conn: duckdb.DuckDBPyConnection, seq: int, rehash: bool = False) -> None:
    (text, prev) = conn.execute("SELECT decision, prev_hash FROM decisions WHERE seq = ?",
                                [seq]).fetchone()
    doc = json.loads(text)
    doc["reasons"] = ["edited later"]
    new = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    conn.execute("UPDATE decisions SET decision = ? WHERE seq = ?", [new, seq])
    if rehash:
        hashed = hashlib.sha256((prev + new).encode()).hexdigest()
        conn.execute("UPDATE decisions SET hash = ? WHERE seq = ?", [hashed, seq])


TAMPERING = {
    "edited decision": (lambda c: _edit_json(c, 3), 3, "edited"),
    "edited and rehashed": (lambda c: _edit_json(c, 3, rehash=True), 4, "link"),
    "edited filter column": (lambda c: c.execute(
        "UPDATE decisions SET allowed = false WHERE seq = 2"), 2, "edited"),
    "deleted row": (lambda c: c.execute("DELETE FROM decisions WHERE seq = 3"), 3, "gap"),
    "deleted and renumbered": (lambda c: c.execute(
        "DELETE FROM decisions WHERE seq = 3; "
        "UPDATE decisions SET seq = seq - 1 WHERE seq > 3"), 3, "link"),
    "reordered": (lambda c: c.execute(
        "UPDATE decisions SET seq = CASE seq WHEN 2 THEN 3 ELSE 2 END WHERE seq IN (2, 3)"),
        2, "link"),
}


@pytest.mark.parametrize("how", list(TAMPERING))
def test_verify_finds_the_first_broken_seq(path, how):
    tamper, broken_seq, problem = TAMPERING[how]
    conn = duckdb.connect(str(path))
    tamper(conn)
    conn.close()
    code, report = verify_cli(path)
    assert code == 1
    assert (report["ok"], report["broken_seq"], report["problem"]) == (False, broken_seq,
                                                                       problem)
    assert report["checked"] == broken_seq - 1 and report["head_seq"] == broken_seq - 1


def test_the_api_verifies_the_chain_it_holds(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    client = TestClient(create_app(store, CollectorRegistry(), {}))
    client.app.state.decisions.insert([(decision(i), src(i)) for i in (1, 2, 3)])
    ok = client.get("/audit/verify").json()
    assert (ok["ok"], ok["checked"], ok["broken_seq"]) == (True, 3, None)
    with store.cursor() as cur:
        cur.execute("UPDATE decisions SET revision = 'rev-2' WHERE seq = 2")
    first = client.app.state.decisions.chained("decision_id", "d1")[0]["hash"]
    assert client.get("/audit/verify").json() == {
        "ok": False, "checked": 1, "head_seq": 1, "head_hash": first, "broken_seq": 2,
        "problem": "edited", "detail": "seq 2: column revision is 'rev-2', the decision says "
                                       "'rev-1'"}
    store.close()


def test_verify_refuses_a_file_the_api_holds(path):
    store = Store(path)
    result = CliRunner().invoke(audit_app, ["verify", "--db", str(path)])
    store.close()
    assert result.exit_code == 2
    assert "use GET /audit/verify or POST /audit/query on the API" in result.stderr
