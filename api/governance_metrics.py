"""Prometheus gauges of the governance gate's decisions, read from the decision log at
scrape time (every API replica reports what its store holds).

Gauges, not counters: they count rows the store holds, so they restart from the store's
content, not from zero, when the API restarts. `increase()` over them still shows
decisions per interval; a replay stores nothing twice, so it adds nothing.
"""

from __future__ import annotations

from typing import Any

from api.store import Store

ENGINE = "engine"
"""The `rule` of a denial without a policy's prefix: the engine failed (fail closed)."""

_DECISIONS = """
SELECT proposal_type, coalesce(model, ''), allowed, count(*)
FROM decisions GROUP BY ALL
"""
_RULES = """
SELECT proposal_type, coalesce(model, ''), allowed, rule, count(*)
FROM (SELECT proposal_type, model, allowed,
             unnest(coalesce(json_extract_string(decision, '$.result.rules[*]'),
                             []::VARCHAR[])) AS rule
      FROM decisions)
GROUP BY ALL
"""
_DENIALS = """
SELECT proposal_type, coalesce(model, ''),
       CASE WHEN contains(reason, ': ') AND error IS NULL
            THEN split_part(reason, ': ', 1) ELSE ? END AS rule,
       count(*)
FROM (SELECT proposal_type, model,
             json_extract_string(decision, '$.error') AS error,
             unnest(coalesce(json_extract_string(decision, '$.reasons[*]'),
                             []::VARCHAR[])) AS reason
      FROM decisions WHERE NOT allowed)
GROUP BY ALL
"""


class GovernanceGauges:
    """`steward_governance_decisions{proposal_type,model,allowed}`: decisions stored;
    `steward_governance_rule_decisions{proposal_type,model,allowed,rule}`: decisions per
    policy that governed the action (the result's `rules`); `steward_governance_denials
    {proposal_type,model,rule}`: deny reasons per policy (a reason's prefix before ': ';
    `engine` when the engine failed and the gate denied)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Any:
        from prometheus_client.core import GaugeMetricFamily

        base = ["proposal_type", "model"]
        decisions = GaugeMetricFamily(
            "steward_governance_decisions", "Policy decisions stored, by proposal type, "
            "model and result (allowed true/false).", labels=[*base, "allowed"])
        by_rule = GaugeMetricFamily(
            "steward_governance_rule_decisions", "Policy decisions stored per policy that "
            "governed the action, by result.", labels=[*base, "allowed", "rule"])
        denials = GaugeMetricFamily(
            "steward_governance_denials", "Deny reasons stored, by the policy that gave them "
            "('engine': the engine failed and the gate denied).", labels=[*base, "rule"])
        with self.store.cursor() as cur:
            for ptype, model, allowed, n in cur.execute(_DECISIONS).fetchall():
                decisions.add_metric([ptype, model, _flag(allowed)], n)
            for ptype, model, allowed, rule, n in cur.execute(_RULES).fetchall():
                by_rule.add_metric([ptype, model, _flag(allowed), rule], n)
            for ptype, model, rule, n in cur.execute(_DENIALS, [ENGINE]).fetchall():
                denials.add_metric([ptype, model, rule], n)
        yield from (decisions, by_rule, denials)


def _flag(allowed: bool) -> str:
    return "true" if allowed else "false"
