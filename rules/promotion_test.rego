# Cases for steward.promotion, run by `steward policy test` (see README.md: Tests).
package steward.promotion_test

good := {
	"action": {"type": "steward.model.promoted", "model": "fraud-detector", "version": "1.5.0"},
	"evidence": {
		"eval": {"auc": 0.95, "recall": 0.85, "latency_p95_ms": 30},
		"canary": {"verdict": "pass"},
	},
}

cases["allow: metrics, card and canary pass"] := {"input": good, "deny": []}

cases["deny: metric below minimum"] := {
	"input": good,
	"patch": {"evidence": {"eval": {"auc": 0.9}}},
	"deny": ["eval auc 0.9 below minimum 0.92"],
}

cases["deny: metric above maximum"] := {
	"input": good,
	"patch": {"evidence": {"eval": {"latency_p95_ms": 80}}},
	"deny": ["eval latency_p95_ms 80 above maximum 50"],
}

cases["deny: missing metric is named"] := {
	"input": good,
	"patch": {"evidence": {"eval": {"recall": null}}},
	"deny": ["evidence.eval.recall is not a number"],
}

cases["deny: absent metric is named"] := {
	"input": {"action": good.action, "evidence": {"eval": {"auc": 0.95, "latency_p95_ms": 30}, "canary": {"verdict": "pass"}}},
	"deny": ["evidence.eval.recall missing"],
}

cases["deny: default thresholds for a model without its own"] := {
	"input": {
		"action": {"type": "steward.model.promoted", "model": "churn", "version": "2.0.0"},
		"evidence": {"eval": {"accuracy": 0.8, "auc": 0.9}, "canary": {"verdict": "pass"}},
	},
	"deny": ["eval accuracy 0.8 below minimum 0.9"],
}

cases["deny: no model card"] := {
	"input": good,
	"patch": {"action": {"version": "1.6.0"}},
	"deny": ["model card missing for fraud-detector 1.6.0 (evidence.model_card not true, not in data.promotion.model_cards)"],
}

cases["allow: model card in evidence"] := {
	"input": good,
	"patch": {"action": {"version": "1.6.0"}, "evidence": {"model_card": true}},
	"deny": [],
}

cases["deny: canary failed"] := {
	"input": good,
	"patch": {"evidence": {"canary": {"verdict": "fail"}}},
	"deny": ["canary verdict is fail, not pass"],
}

cases["deny: no canary verdict"] := {
	"input": {"action": good.action, "evidence": {"eval": good.evidence.eval}},
	"deny": ["evidence.canary.verdict missing"],
}

cases["allow: canary not required by data"] := {
	"input": {"action": good.action, "evidence": {"eval": good.evidence.eval}},
	"data": {"promotion": {"canary_required": false}},
	"deny": [],
}

cases["deny: bare promotion fails closed"] := {
	"input": {"action": {"type": "steward.model.promoted"}},
	"deny_includes": ["action.model missing", "action.version missing", "evidence.canary.verdict missing"],
}

cases["allow: rollback not governed"] := {
	"input": {"action": {"type": "steward.model.rolled_back"}},
	"rule": "applies",
	"equals": false,
}
