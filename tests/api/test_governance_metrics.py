"""The governance and fleet gauges, read from a real DuckDB file at scrape time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry

from api.decisions import DecisionStore
from api.fleet_metrics import FleetGauges
from api.governance_metrics import GovernanceGauges
from api.sink import EventSink, InferenceSink
from api.store import Store
from api.verdicts import VerdictStore
from steward.schema import EventType, InferenceRecord, make_event
from steward.schema.governance import Decision
from steward.stream import Source

T0 = datetime(2026, 11, 23, 12, tzinfo=UTC)


def decision(i: int, allowed: bool, reasons: list[str], rules: list[str],
             error: str | None = None, ptype: str = EventType.RETRAIN_REQUESTED) -> Decision:
    return Decision(decision_id=f"d{i}", path="steward/gate/decision", input={},
                    result=None if error else {"allow": allowed, "deny": reasons,
                                               "rules": rules},
                    allowed=allowed, reasons=reasons, revision="r1", engine="embedded",
                    error=error, timestamp=T0, proposal_id=f"p{i}", proposal_type=ptype,
                    proposal_source="/t", model="fraud", version="1")


def registry_of(*collectors) -> CollectorRegistry:
    registry = CollectorRegistry()
    for c in collectors:
        registry.register(c)
    return registry


def test_decisions_by_result_policy_and_deny_reason(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    decisions = DecisionStore(store)
    decisions.insert([(d, None) for d in (
        decision(1, True, [], ["budget", "quotas"]),
        decision(2, False, ["budget: team risk GPU budget exceeded", "quotas: limit"],
                 ["budget", "quotas"]),
        decision(3, False, ["policy engine failed: timeout"], [], error="timeout"),
        decision(4, True, [], [], ptype=EventType.MODEL_ROLLED_BACK))])
    r = registry_of(GovernanceGauges(store))
    retrain = {"proposal_type": "steward.retrain.requested", "model": "fraud"}

    def value(name: str, **labels: str) -> float | None:
        return r.get_sample_value(name, {**retrain, **labels})

    assert value("steward_governance_decisions", allowed="true") == 1
    assert value("steward_governance_decisions", allowed="false") == 2
    assert r.get_sample_value("steward_governance_decisions", {
        "proposal_type": "steward.model.rolled_back", "model": "fraud", "allowed": "true"}) == 1
    assert value("steward_governance_rule_decisions", allowed="false", rule="budget") == 1
    assert value("steward_governance_rule_decisions", allowed="true", rule="quotas") == 1
    assert value("steward_governance_denials", rule="budget") == 1
    assert value("steward_governance_denials", rule="quotas") == 1
    assert value("steward_governance_denials", rule="engine") == 1
    store.close()


def test_events_stored_and_sites_last_heard_from(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    sink = EventSink(store)
    events = [make_event(EventType.DATA_QUALITY, source="/t", subject="s", key="fraud",
                         data=decision(i, True, [], []), time=T0, facts=(i,))
              for i in range(3)]
    sink.write([(e, Source("alerts", 0, i)) for i, e in enumerate([*events, events[0]])])
    VerdictStore(store)  # the API creates its tables at start
    r = registry_of(FleetGauges(store))
    assert r.get_sample_value("steward_events", {"type": "steward.data_quality",
                                                 "model": "fraud"}) == 3
    InferenceSink(store).write([(InferenceRecord(
        model="fraud", version="1", site="berlin", tier="edge", ts=T0 + timedelta(seconds=s),
        latency_ms=1.0), Source("inference", 0, s)) for s in (5, 9)])
    assert r.get_sample_value("steward_site_last_seen_timestamp_seconds",
                              {"site": "berlin"}) == (T0 + timedelta(seconds=9)).timestamp()
    store.close()
