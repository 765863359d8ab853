# Cases for steward.gate (the entry document), run by `steward policy test`.
package steward.gate_test

promotion := {
	"action": {
		"type": "steward.model.promoted",
		"model": "fraud-detector",
		"version": "1.5.0",
		"team": "risk",
		"sites": ["shop-lyon"],
		"target": {"region": "eu-west-1", "tier": "edge", "accelerator": "jetson-orin-nano", "memory_gb": 8},
		"artifact": {"format": "onnx", "quantisation": "int8", "memory_gb": 2},
	},
	"evidence": {
		"eval": {"auc": 0.95, "recall": 0.85, "latency_p95_ms": 30},
		"canary": {"verdict": "pass"},
		"cost": {"team_spent_usd": 100, "estimated_usd": 20},
		"counts": {"promotions_24h": 0},
	},
}

cases["allow: promotion, every policy applies"] := {
	"input": promotion,
	"rule": "decision",
	"equals": {"allow": true, "deny": [], "rules": ["budget", "fleet", "hardware", "promotion", "quotas", "residency"]},
}

cases["deny: reasons prefixed with the policy and sorted"] := {
	"input": promotion,
	"patch": {"evidence": {"canary": {"verdict": "fail"}, "cost": {"team_spent_usd": 19990}}},
	"rule": "decision",
	"equals": {
		"allow": false,
		"deny": [
			"budget: team risk GPU budget exceeded: spent 19990.00 + estimated 20.00 = 20010.00 USD > budget 20000.00 USD",
			"promotion: canary verdict is fail, not pass",
		],
		"rules": ["budget", "fleet", "hardware", "promotion", "quotas", "residency"],
	},
}

cases["allow: rollback always allowed"] := {
	"input": {"action": {"type": "steward.model.rolled_back", "team": "risk"}, "evidence": {"cost": {"team_spent_usd": 99999999, "estimated_usd": 1}}},
	"rule": "decision",
	"equals": {"allow": true, "deny": [], "rules": []},
}

cases["deny: bare promotion fails closed"] := {
	"input": {"action": {"type": "steward.model.promoted"}},
	"deny_includes": ["budget: action.team missing", "promotion: action.model missing", "residency: action.target.region missing"],
}

cases["deny: no action type"] := {
	"input": {},
	"rule": "decision",
	"equals": {"allow": false, "deny": ["gate: input.action.type missing"], "rules": []},
}

cases["deny: unknown action type"] := {
	"input": {"action": {"type": "steward.model.deleted"}},
	"deny": ["gate: unknown action type steward.model.deleted"],
}

cases["allow: retrain governed by budget, quotas, residency"] := {
	"input": {"action": {"type": "steward.retrain.requested"}},
	"rule": "rules",
	"equals": ["budget", "quotas", "residency"],
}

cases["allow: route change governed by hardware, residency"] := {
	"input": {"action": {"type": "steward.route.changed"}},
	"rule": "rules",
	"equals": ["hardware", "residency"],
}

cases["allow: a rollout's step advance and pause are known, governed by no policy yet"] := {
	"input": {"action": {"type": "steward.rollout.step_advanced", "model": "fraud-detector"}},
	"rule": "decision",
	"equals": {"allow": true, "deny": [], "rules": []},
}

cases["allow: a paused rollout is the safe move"] := {
	"input": {"action": {"type": "steward.rollout.paused"}},
	"rule": "decision",
	"equals": {"allow": true, "deny": [], "rules": []},
}

cases["allow: a rollout started for a retrained version is known, governed by no policy yet"] := {
	"input": {"action": {"type": "steward.rollout.started", "model": "fraud-detector", "version": "1.5.0"}},
	"rule": "decision",
	"equals": {"allow": true, "deny": [], "rules": []},
}
