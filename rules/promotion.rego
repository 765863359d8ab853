# Promotion gate: a model version is promoted only with its evaluation metrics within the
# thresholds in data.promotion.thresholds (per model, else "default"), a model card
# (evidence.model_card, or the version listed in data.promotion.model_cards) and, when
# data.promotion.canary_required, a passing canary (evidence.canary.verdict == "pass").
# Governs steward.model.promoted only: a rollback is never blocked by this gate.
package steward.promotion

governs := {"steward.model.promoted"}

default applies := false

applies if input.action.type in governs

model := input.action.model

version := input.action.version

thresholds := data.promotion.thresholds[model]

thresholds := data.promotion.thresholds["default"] if not data.promotion.thresholds[model]

has_metric(metric) if _ = input.evidence.eval[metric]

deny contains "action.model missing" if {
	applies
	not is_string(input.action.model)
}

deny contains "action.version missing" if {
	applies
	not is_string(input.action.version)
}

# --- evaluation metrics -------------------------------------------------------------

deny contains sprintf("evidence.eval.%s missing", [metric]) if {
	applies
	some metric, _ in thresholds
	not has_metric(metric)
}

deny contains sprintf("evidence.eval.%s is not a number", [metric]) if {
	applies
	some metric, _ in thresholds
	not is_number(input.evidence.eval[metric])
	has_metric(metric)
}

deny contains msg if {
	applies
	some metric, limit in thresholds
	value := input.evidence.eval[metric]
	is_number(value)
	value < limit.min
	msg := sprintf("eval %s %v below minimum %v", [metric, value, limit.min])
}

deny contains msg if {
	applies
	some metric, limit in thresholds
	value := input.evidence.eval[metric]
	is_number(value)
	value > limit.max
	msg := sprintf("eval %s %v above maximum %v", [metric, value, limit.max])
}

# --- model card -----------------------------------------------------------------------

card_present if input.evidence.model_card == true

card_present if version in data.promotion.model_cards[model]

deny contains msg if {
	applies
	is_string(model)
	is_string(version)
	not card_present
	msg := sprintf(
		"model card missing for %s %s (evidence.model_card not true, not in data.promotion.model_cards)",
		[model, version],
	)
}

# --- canary ----------------------------------------------------------------------------

deny contains "evidence.canary.verdict missing" if {
	applies
	data.promotion.canary_required
	not input.evidence.canary.verdict
}

deny contains msg if {
	applies
	data.promotion.canary_required
	verdict := input.evidence.canary.verdict
	verdict != "pass"
	msg := sprintf("canary verdict is %v, not pass", [verdict])
}
