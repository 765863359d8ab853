# Budget: no promotion or retrain that would take the team's GPU spend over its budget
# (data.budgets.teams[team].gpu_usd): denied when
# evidence.cost.team_spent_usd + evidence.cost.estimated_usd > budget.
# A team with no budget entry, or missing cost evidence, is denied (fail closed).
# Rollbacks and route changes are never blocked by a budget.
package steward.budget

governs := {"steward.model.promoted", "steward.retrain.requested"}

default applies := false

applies if input.action.type in governs

team := input.action.team

cost := input.evidence.cost

# Dollars with cents, formatted the same way by every engine.
usd(x) := sprintf("%d.%02d", [floor(c / 100), c % 100]) if c := round(x * 100)

deny contains "action.team missing" if {
	applies
	not is_string(team)
}

deny contains msg if {
	applies
	is_string(team)
	not is_number(data.budgets.teams[team].gpu_usd)
	msg := sprintf("no GPU budget for team %s in data.budgets.teams", [team])
}

deny contains sprintf("evidence.cost.%s missing", [field]) if {
	applies
	some field in ["team_spent_usd", "estimated_usd"]
	not is_number(cost[field])
}

deny contains msg if {
	applies
	budget := data.budgets.teams[team].gpu_usd
	is_number(budget)
	is_number(cost.team_spent_usd)
	is_number(cost.estimated_usd)
	total := cost.team_spent_usd + cost.estimated_usd
	total > budget
	msg := sprintf("team %s GPU budget exceeded: spent %s + estimated %s = %s USD > budget %s USD",
		[team, usd(cost.team_spent_usd), usd(cost.estimated_usd), usd(total), usd(budget)])
}
