# Cases for steward.fleet, run by `steward policy test` (see README.md: Tests).
package steward.fleet_test

promote(model, fleet) := {
	"action": {"type": "steward.model.promoted", "model": model},
	"evidence": {"fleet": fleet},
}

cases["allow: under the default limit"] := {
	"input": promote("churn", {"nodes": 4, "offline": 1, "offline_share": 0.25}),
	"deny": [],
}

cases["allow: at the limit"] := {
	"input": promote("churn", {"nodes": 4, "offline": 2, "offline_share": 0.5}),
	"deny": [],
}

cases["deny: over the default limit"] := {
	"input": promote("churn", {"nodes": 4, "offline": 3, "offline_share": 0.75}),
	"deny": ["0.75 of the churn fleet is offline (3 of 4 nodes), over the limit 0.5"],
}

cases["deny: over the model's limit"] := {
	"input": promote("fraud-detector", {"nodes": 5, "offline": 2, "offline_share": 0.4}),
	"deny": ["0.4 of the fraud-detector fleet is offline (2 of 5 nodes), over the limit 0.2"],
}

cases["deny: limit comes from data"] := {
	"input": promote("churn", {"nodes": 10, "offline": 1, "offline_share": 0.1}),
	"data": {"fleet": {"max_offline_share": {"default": 0}}},
	"deny": ["0.1 of the churn fleet is offline (1 of 10 nodes), over the limit 0"],
}

cases["deny: a share that is not a number"] := {
	"input": promote("churn", {"offline_share": "most"}),
	"deny": ["evidence.fleet.offline_share is not a number"],
}

cases["allow: no fleet figure, not judged"] := {
	"input": {"action": {"type": "steward.model.promoted", "model": "churn"}},
	"deny": [],
}

cases["allow: rollbacks are not governed"] := {
	"input": {"action": {"type": "steward.model.rolled_back"}, "evidence": {"fleet": {"offline_share": 1}}},
	"rule": "applies",
	"equals": false,
}
