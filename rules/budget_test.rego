# Cases for steward.budget, run by `steward policy test` (see README.md: Tests).
package steward.budget_test

retrain := {
	"action": {"type": "steward.retrain.requested", "model": "fraud-detector", "team": "risk"},
	"evidence": {"cost": {"team_spent_usd": 12000, "estimated_usd": 1500.25}},
}

cases["allow: within budget"] := {"input": retrain, "deny": []}

cases["allow: exactly at budget"] := {
	"input": retrain,
	"patch": {"evidence": {"cost": {"team_spent_usd": 18500, "estimated_usd": 1500}}},
	"deny": [],
}

cases["deny: over budget"] := {
	"input": retrain,
	"patch": {"evidence": {"cost": {"team_spent_usd": 19000.5, "estimated_usd": 1500.25}}},
	"deny": ["team risk GPU budget exceeded: spent 19000.50 + estimated 1500.25 = 20500.75 USD > budget 20000.00 USD"],
}

cases["deny: promotion over budget"] := {
	"input": {"action": {"type": "steward.model.promoted", "team": "growth"}, "evidence": {"cost": {"team_spent_usd": 4990, "estimated_usd": 20}}},
	"deny": ["team growth GPU budget exceeded: spent 4990.00 + estimated 20.00 = 5010.00 USD > budget 5000.00 USD"],
}

cases["deny: team without a budget"] := {
	"input": retrain,
	"patch": {"action": {"team": "unknown-team"}},
	"deny": ["no GPU budget for team unknown-team in data.budgets.teams"],
}

cases["deny: missing cost is named"] := {
	"input": {"action": retrain.action, "evidence": {"cost": {"team_spent_usd": 10}}},
	"deny": ["evidence.cost.estimated_usd missing"],
}

cases["deny: missing team"] := {
	"input": {"action": {"type": "steward.retrain.requested"}, "evidence": retrain.evidence},
	"deny": ["action.team missing"],
}

cases["deny: budget comes from data"] := {
	"input": retrain,
	"data": {"budgets": {"teams": {"risk": {"gpu_usd": 1000}}}},
	"deny": ["team risk GPU budget exceeded: spent 12000.00 + estimated 1500.25 = 13500.25 USD > budget 1000.00 USD"],
}

cases["allow: a rollback is never blocked by a budget"] := {
	"input": {"action": {"type": "steward.model.rolled_back", "team": "risk"}, "evidence": {"cost": {"team_spent_usd": 1000000, "estimated_usd": 5}}},
	"deny": [],
}

cases["allow: rollback not governed"] := {
	"input": {"action": {"type": "steward.model.rolled_back", "team": "risk"}},
	"rule": "applies",
	"equals": false,
}
