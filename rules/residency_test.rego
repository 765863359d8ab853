# Cases for steward.residency, run by `steward policy test` (see README.md: Tests).
package steward.residency_test

route := {"action": {
	"type": "steward.route.changed",
	"model": "fraud-detector",
	"sites": ["shop-lyon", "factory-berlin"],
	"target": {"region": "eu-central-1"},
}}

cases["allow: EU sites to an EU region the model may use"] := {"input": route, "deny": []}

cases["deny: EU site data to a non-EU target"] := {
	"input": {"action": {"type": "steward.retrain.requested", "model": "churn", "sites": ["shop-lyon"], "target": {"region": "us-east-1"}}},
	"deny": [
		"EU site shop-lyon data may not be routed to non-EU region us-east-1",
		"data from site shop-lyon may not go to us-east-1 (allowed: [\"eu-central-1\", \"eu-west-1\"])",
	],
}

cases["deny: model outside its regions"] := {
	"input": {"action": {"type": "steward.model.promoted", "model": "fraud-detector", "target": {"region": "eu-north-1"}}},
	"deny": ["model fraud-detector may not be served or stored in eu-north-1 (allowed: [\"eu-central-1\", \"eu-west-1\"])"],
}

cases["allow: non-EU site to a non-EU region"] := {
	"input": {"action": {"type": "steward.retrain.requested", "model": "churn", "sites": ["store-austin"], "target": {"region": "us-east-1"}}},
	"deny": [],
}

cases["allow: unlisted model in a default region"] := {
	"input": {"action": {"type": "steward.model.promoted", "model": "new-model", "target": {"region": "eu-west-1"}}},
	"deny": [],
}

cases["deny: unlisted model outside the default regions"] := {
	"input": {"action": {"type": "steward.model.promoted", "model": "new-model", "target": {"region": "eu-central-1"}}},
	"deny": ["model new-model may not be served or stored in eu-central-1 (allowed: [\"eu-west-1\"])"],
}

cases["deny: site without a residency entry"] := {
	"input": route,
	"patch": {"action": {"sites": ["moon-base"]}},
	"deny": ["site moon-base has no residency entry in data.residency.sites"],
}

cases["deny: no target region"] := {
	"input": {"action": {"type": "steward.route.changed", "model": "fraud-detector"}},
	"deny": ["action.target.region missing"],
}

cases["deny: regions come from data"] := {
	"input": route,
	"data": {"residency": {"models": {"fraud-detector": ["eu-west-1"]}}},
	"deny": ["model fraud-detector may not be served or stored in eu-central-1 (allowed: [\"eu-west-1\"])"],
}

cases["allow: rollback not governed"] := {
	"input": {"action": {"type": "steward.model.rolled_back", "model": "fraud-detector", "target": {"region": "us-east-1"}}},
	"rule": "applies",
	"equals": false,
}
