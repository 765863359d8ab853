# Quotas: at most N retrain requests and M promotions per model per day
# (data.quotas.*_per_model_per_day[model], else ["default"]). The proposer supplies how
# many it already made in the last 24 h, not counting this one:
# evidence.counts.retrain_requests_24h and evidence.counts.promotions_24h.
# Missing counts deny (fail closed). Rollbacks and route changes have no quota.
package steward.quotas

counters := {
	"steward.retrain.requested": {"count": "retrain_requests_24h", "limit": "retrain_requests_per_model_per_day"},
	"steward.model.promoted": {"count": "promotions_24h", "limit": "promotions_per_model_per_day"},
}

default applies := false

applies if counters[input.action.type]

counter := counters[input.action.type]

limits := data.quotas[counter.limit]

limit := limits[input.action.model]

limit := limits["default"] if not limits[input.action.model]

deny contains msg if {
	applies
	not is_number(input.evidence.counts[counter.count])
	msg := sprintf("evidence.counts.%s missing", [counter.count])
}

deny contains msg if {
	applies
	not is_number(limit)
	msg := sprintf("no quota %s for model %v or default in data.quotas", [counter.limit, input.action.model])
}

deny contains msg if {
	applies
	used := input.evidence.counts[counter.count]
	is_number(used)
	is_number(limit)
	used >= limit
	msg := sprintf("%s quota reached for %v: %v in the last 24 h, limit %v per day",
		[counter.count, input.action.model, used, limit])
}
