"""Backtesting candidate rules over stored decisions: exactly the decisions a changed
threshold flips, both ways, from a real store. The engines here are small objects
implementing the engine interface; the last test runs the embedded Rego engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from api.decisions import DecisionStore
from api.store import Store
from steward.governance.backtest import backtest
from steward.governance.engine import Evaluation
from steward.governance.gate import Gate
from steward.governance.masking import mask
from steward.schema import make_event
from steward.schema.governance import Decision

T0 = datetime(2026, 11, 23, 12, tzinfo=UTC)
SHARES = [0.1, 0.25, 0.35, 0.45, 0.55, 0.65, 0.8]


class Proposed(BaseModel):
    model: str
    sites: list[str]
    share: float
    owner: str


@dataclass
class Threshold:
    """Allows a proposal whose drift share is at most `limit`."""

    limit: float
    error: str | None = None
    name: str = "embedded"
    seen: list[dict[str, Any]] = field(default_factory=list)

    @property
    def revision(self) -> str:
        return f"limit-{self.limit}"

    def evaluate(self, path: str, input: dict[str, Any]) -> Evaluation:
        self.seen.append(input)
        share = input["data"]["share"]
        deny = [f"share {share} over {self.limit}"] if share > self.limit else []
        return Evaluation(path, {"allow": not deny, "deny": deny}, self.revision, "embedded",
                          0.1, self.error)


def proposal(i: int, share: float):
    data = Proposed(model="fraud", sites=["berlin"], share=share, owner=f"owner-{i}")
    return make_event("steward.retrain.requested", source="/test", subject="fraud/1.4.0",
                      data=data, key="fraud", time=T0, facts=(i,))


@pytest.fixture
def stored(tmp_path) -> list[Decision]:
    """The gate's decisions at limit 0.5 over SHARES, stored and read back from the store."""
    gate = Gate(Threshold(0.5), mask, masked_fields=["/data/owner"])
    store = Store(tmp_path / "steward.duckdb")
    decisions = DecisionStore(store)
    decisions.insert([(gate.decide(proposal(i, s), T0 + timedelta(seconds=i)).decision, None)
                      for i, s in enumerate(SHARES)])
    with store.cursor() as cur:
        rows = cur.execute("SELECT decision FROM decisions ORDER BY seq").fetchall()
    store.close()
    return [Decision.model_validate_json(doc) for (doc,) in rows]


def ids(decisions: list[Decision], shares: list[float]) -> list[str]:
    return [d.decision_id for d, s in zip(decisions, SHARES, strict=True) if s in shares]


def test_a_stricter_threshold_denies_exactly_the_decisions_between_old_and_new(stored):
    report = backtest(stored, Threshold(0.3))
    assert [f.decision_id for f in report.to_denied] == ids(stored, [0.35, 0.45])
    assert report.to_allowed == [] and report.errors == []
    assert (report.evaluated, report.unchanged) == (7, 5)
    flip = report.to_denied[0]
    assert (flip.was_allowed, flip.now_allowed, flip.reasons_before, flip.reasons_now) == \
        (True, False, [], ["share 0.35 over 0.3"])
    assert flip.masked == ["/data/owner"]
    assert report.evaluated_masked == 7
    assert (report.candidate_revision, report.revisions_seen) == ("limit-0.3", ["limit-0.5"])


def test_a_looser_threshold_allows_exactly_the_decisions_between_old_and_new(stored):
    candidate = Threshold(0.6)
    report = backtest(stored, candidate)
    assert [f.decision_id for f in report.to_allowed] == ids(stored, [0.55])
    assert report.to_allowed[0].reasons_before == ["share 0.55 over 0.5"]
    assert report.to_denied == [] and report.unchanged == 6
    assert [seen["data"]["owner"] for seen in candidate.seen] == ["***"] * 7


def test_the_same_rules_flip_nothing_and_a_failing_candidate_is_an_error_not_a_flip(stored):
    assert backtest(stored, Threshold(0.5)).flips == []
    broken = backtest(stored, Threshold(0.3, error="timeout"))
    assert broken.flips == [] and broken.unchanged == 0
    assert [(e.decision_id, e.error) for e in broken.errors] == \
        [(d.decision_id, "timeout") for d in stored]


GATE_REGO = """package steward.gate

deny contains msg if {
\tinput.data.share > data.limits.share
\tmsg := sprintf("share %v over %v", [input.data.share, data.limits.share])
}

decision := {"allow": count(deny) == 0, "deny": sort([m | some m in deny])}
"""


def test_the_embedded_engine_backtests_a_changed_threshold(stored, tmp_path):
    embedded = pytest.importorskip("steward.governance.embedded")
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "gate.rego").write_text(GATE_REGO)
    (rules / "data.json").write_text('{"limits": {"share": 0.4}}')
    report = backtest(stored, embedded.EmbeddedEngine(rules))
    assert [f.decision_id for f in report.to_denied] == ids(stored, [0.45])
    assert report.to_denied[0].reasons_now == ["share 0.45 over 0.4"]
    assert report.to_allowed == [] and report.errors == [] and report.unchanged == 6


def test_the_cli_backtests_from_a_stopped_store_or_over_the_api(tmp_path):
    import json

    from prometheus_client import CollectorRegistry
    from typer.testing import CliRunner

    from api.app import create_app
    from steward.auth import Authenticator, new_token
    from steward.cli import app as cli
    from tests.support import Served

    embedded = pytest.importorskip("steward.governance.embedded")
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "gate.rego").write_text(GATE_REGO)
    (rules / "data.json").write_text('{"limits": {"share": 0.6}}')
    gate = Gate(Threshold(0.5), mask, masked_fields=["/data/owner"])
    path = tmp_path / "steward.duckdb"
    store = Store(path)
    token, spec = new_token("auditor", ["admin"], None)
    app = create_app(store, CollectorRegistry(), {}, auth=Authenticator([spec]))
    app.state.decisions.insert([(gate.decide(proposal(i, s), T0).decision, None)
                                for i, s in enumerate(SHARES)])
    served = Served(app)
    try:
        over_api = CliRunner().invoke(cli, ["policy", "backtest", "--rules", str(rules),
                                            "--api", served.url, "--token", token])
    finally:
        served.stop()
        store.close()
    from_file = CliRunner().invoke(cli, ["policy", "backtest", "--rules", str(rules),
                                         "--db", str(path)])
    verified = CliRunner().invoke(cli, ["audit", "verify", "--db", str(path)])
    for result in (over_api, from_file):
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert [f["now_allowed"] for f in report["to_allowed"]] == [True]
        assert report["to_allowed"][0]["reasons_before"] == ["share 0.55 over 0.5"]
        assert report["candidate_revision"] == embedded.EmbeddedEngine(rules).revision
        assert result.stderr == ("7 decisions re-evaluated (7 with masked fields): 0 allowed "
                                 "-> denied, 1 denied -> allowed, 0 errors\n")
    assert verified.exit_code == 0 and json.loads(verified.stdout)["checked"] == 7
