# Cases for steward.quotas, run by `steward policy test` (see README.md: Tests).
package steward.quotas_test

retrain(model, n) := {
	"action": {"type": "steward.retrain.requested", "model": model},
	"evidence": {"counts": {"retrain_requests_24h": n}},
}

cases["allow: under the model's quota"] := {"input": retrain("fraud-detector", 2), "deny": []}

cases["deny: at the model's quota"] := {
	"input": retrain("fraud-detector", 3),
	"deny": ["retrain_requests_24h quota reached for fraud-detector: 3 in the last 24 h, limit 3 per day"],
}

cases["allow: under the default quota"] := {"input": retrain("churn", 1), "deny": []}

cases["deny: at the default quota"] := {
	"input": retrain("churn", 2),
	"deny": ["retrain_requests_24h quota reached for churn: 2 in the last 24 h, limit 2 per day"],
}

cases["deny: promotion quota"] := {
	"input": {"action": {"type": "steward.model.promoted", "model": "churn"}, "evidence": {"counts": {"promotions_24h": 4}}},
	"deny": ["promotions_24h quota reached for churn: 4 in the last 24 h, limit 4 per day"],
}

cases["deny: missing count is named"] := {
	"input": {"action": {"type": "steward.retrain.requested", "model": "churn"}},
	"deny": ["evidence.counts.retrain_requests_24h missing"],
}

cases["deny: quota comes from data"] := {
	"input": retrain("fraud-detector", 1),
	"data": {"quotas": {"retrain_requests_per_model_per_day": {"fraud-detector": 1}}},
	"deny": ["retrain_requests_24h quota reached for fraud-detector: 1 in the last 24 h, limit 1 per day"],
}

cases["allow: rollbacks have no quota"] := {
	"input": {"action": {"type": "steward.model.rolled_back"}},
	"rule": "applies",
	"equals": false,
}

cases["allow: route changes have no quota"] := {
	"input": {"action": {"type": "steward.route.changed"}},
	"rule": "applies",
	"equals": false,
}
