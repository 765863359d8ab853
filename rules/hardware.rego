# Hardware compatibility: an artifact may go to an edge target only if the target's
# accelerator (data.hardware.accelerators) runs the artifact's format and quantisation
# and the artifact fits in memory (target.memory_gb when given, else the accelerator's).
# Governs promotions and route changes to edge targets; the target's tier must be given.
package steward.hardware

governs := {"steward.model.promoted", "steward.route.changed"}

default applies := false

applies if input.action.type in governs

target := input.action.target

artifact := input.action.artifact

edge if target.tier == "edge"

accel := data.hardware.accelerators[target.accelerator]

memory_gb := target.memory_gb

memory_gb := accel.memory_gb if not target.memory_gb

deny contains "action.target.tier missing" if {
	applies
	not is_string(target.tier)
}

deny contains msg if {
	applies
	edge
	some field in ["format", "quantisation"]
	not is_string(artifact[field])
	msg := sprintf("action.artifact.%s missing", [field])
}

deny contains "action.artifact.memory_gb missing" if {
	applies
	edge
	not is_number(artifact.memory_gb)
}

deny contains "action.target.accelerator missing" if {
	applies
	edge
	not is_string(target.accelerator)
}

deny contains msg if {
	applies
	edge
	is_string(target.accelerator)
	not data.hardware.accelerators[target.accelerator]
	msg := sprintf("unknown accelerator %s (not in data.hardware.accelerators)", [target.accelerator])
}

deny contains msg if {
	applies
	edge
	is_string(artifact.format)
	not artifact.format in accel.formats
	msg := sprintf("%s cannot run format %s (runs: %v)",
		[target.accelerator, artifact.format, sort(accel.formats)])
}

deny contains msg if {
	applies
	edge
	is_string(artifact.quantisation)
	not artifact.quantisation in accel.quantisations
	msg := sprintf("%s cannot run quantisation %s (runs: %v)",
		[target.accelerator, artifact.quantisation, sort(accel.quantisations)])
}

deny contains msg if {
	applies
	edge
	is_number(artifact.memory_gb)
	is_number(memory_gb)
	artifact.memory_gb > memory_gb
	msg := sprintf("artifact needs %v GB, %s target has %v GB",
		[artifact.memory_gb, target.accelerator, memory_gb])
}
