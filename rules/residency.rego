# Data residency: a model version (and the telemetry and site data that travel with it)
# may only be served or stored in allowed regions.
#
# - the target region must be one of the model's regions (data.residency.models[model],
#   else data.residency.default_regions);
# - for every site in action.sites: the target region must be in the site's
#   allowed_regions when it has some, and data from a site in an EU region
#   (data.residency.eu_regions) must not go to a non-EU target; a site with no entry in
#   data.residency.sites is denied (its jurisdiction is unknown).
#
# Governs promotions, route changes and retrain requests (retraining stores site data
# in the target region). Rollbacks return to where the baseline already serves: not governed.
package steward.residency

governs := {"steward.model.promoted", "steward.route.changed", "steward.retrain.requested"}

default applies := false

applies if input.action.type in governs

region := input.action.target.region

model_regions := data.residency.models[input.action.model]

model_regions := data.residency.default_regions if not data.residency.models[input.action.model]

eu_regions := {r | some r in data.residency.eu_regions}

deny contains "action.target.region missing" if {
	applies
	not is_string(input.action.target.region)
}

deny contains "action.model missing" if {
	applies
	not is_string(input.action.model)
}

deny contains msg if {
	applies
	is_string(input.action.model)
	is_string(region)
	not region in model_regions
	msg := sprintf("model %s may not be served or stored in %s (allowed: %v)",
		[input.action.model, region, sort(model_regions)])
}

sites contains site if some site in input.action.sites

deny contains msg if {
	applies
	some site in sites
	not data.residency.sites[site]
	msg := sprintf("site %v has no residency entry in data.residency.sites", [site])
}

deny contains msg if {
	applies
	is_string(region)
	some site in sites
	allowed := data.residency.sites[site].allowed_regions
	not region in allowed
	msg := sprintf("data from site %s may not go to %s (allowed: %v)",
		[site, region, sort(allowed)])
}

deny contains msg if {
	applies
	is_string(region)
	some site in sites
	data.residency.sites[site].region in eu_regions
	not region in eu_regions
	msg := sprintf("EU site %s data may not be routed to non-EU region %s", [site, region])
}
