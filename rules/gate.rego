# The one entry document the governance gate evaluates: data.steward.gate.decision.
#
# It is defined for every input: {"allow": bool, "deny": [reasons, sorted],
# "rules": [names of the policies that govern this action, sorted]}, with
# allow == (count(deny) == 0). Each policy package says whether it `applies` to the
# action and which `deny` reasons it has; reasons are prefixed with the policy's name.
package steward.gate

import data.steward.budget
import data.steward.fleet
import data.steward.hardware
import data.steward.promotion
import data.steward.quotas
import data.steward.residency

# Every action type the gate knows; any other type is denied (fail closed).
known_types := {
	"steward.model.promoted",
	"steward.model.rolled_back",
	"steward.retrain.requested",
	"steward.route.changed",
	"steward.rollout.step_advanced",
	"steward.rollout.paused",
	"steward.rollout.started",
}

policies := {
	"budget": {"applies": budget.applies, "deny": budget.deny},
	"fleet": {"applies": fleet.applies, "deny": fleet.deny},
	"hardware": {"applies": hardware.applies, "deny": hardware.deny},
	"promotion": {"applies": promotion.applies, "deny": promotion.deny},
	"quotas": {"applies": quotas.applies, "deny": quotas.deny},
	"residency": {"applies": residency.applies, "deny": residency.deny},
}

gate_deny contains "gate: input.action.type missing" if not is_string(input.action.type)

gate_deny contains msg if {
	is_string(input.action.type)
	not input.action.type in known_types
	msg := sprintf("gate: unknown action type %s", [input.action.type])
}

reasons contains msg if some msg in gate_deny

reasons contains msg if {
	some name, p in policies
	p.applies
	some m in p.deny
	msg := sprintf("%s: %s", [name, m])
}

rules := sort([name | p := policies[name]; p.applies])

deny := sort([m | some m in reasons])

decision := {
	"allow": count(deny) == 0,
	"deny": deny,
	"rules": rules,
}
