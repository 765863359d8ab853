# Fleet: no promotion while too much of the model's fleet is offline (its nodes could not
# take the new version, and a straggler would go unseen).
# The gate adds evidence.fleet = {"nodes", "offline", "offline_share"} from GET /fleet (the
# latest node snapshots of the model, every site); the limit is
# data.fleet.max_offline_share[model], else ["default"]. A model with no fleet telemetry
# has no figure and is not judged; a figure that is not a number denies.
package steward.fleet

default applies := false

applies if input.action.type == "steward.model.promoted"

limits := data.fleet.max_offline_share

limit := limits[input.action.model]

limit := limits["default"] if not limits[input.action.model]

deny contains "evidence.fleet.offline_share is not a number" if {
	applies
	share := input.evidence.fleet.offline_share
	not is_number(share)
}

deny contains msg if {
	applies
	share := input.evidence.fleet.offline_share
	is_number(share)
	not is_number(limit)
	msg := sprintf("no max_offline_share for model %v or default in data.fleet", [input.action.model])
}

deny contains msg if {
	applies
	share := input.evidence.fleet.offline_share
	is_number(share)
	is_number(limit)
	share > limit
	msg := sprintf("%v of the %v fleet is offline (%v of %v nodes), over the limit %v",
		[share, input.action.model, input.evidence.fleet.offline, input.evidence.fleet.nodes, limit])
}
