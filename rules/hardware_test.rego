# Cases for steward.hardware, run by `steward policy test` (see README.md: Tests).
package steward.hardware_test

edge := {"action": {
	"type": "steward.model.promoted",
	"target": {"tier": "edge", "accelerator": "jetson-orin-nano", "memory_gb": 8},
	"artifact": {"format": "tensorrt", "quantisation": "int8", "memory_gb": 3.5},
}}

cases["allow: compatible edge target"] := {"input": edge, "deny": []}

cases["deny: format"] := {
	"input": edge,
	"patch": {"action": {"artifact": {"format": "tflite"}}},
	"deny": ["jetson-orin-nano cannot run format tflite (runs: [\"onnx\", \"tensorrt\"])"],
}

cases["deny: quantisation"] := {
	"input": edge,
	"patch": {"action": {"artifact": {"quantisation": "fp32"}}},
	"deny": ["jetson-orin-nano cannot run quantisation fp32 (runs: [\"fp16\", \"int8\"])"],
}

cases["deny: memory"] := {
	"input": edge,
	"patch": {"action": {"artifact": {"memory_gb": 12}}},
	"deny": ["artifact needs 12 GB, jetson-orin-nano target has 8 GB"],
}

cases["allow: memory defaults to the accelerator's"] := {
	"input": {"action": {
		"type": "steward.route.changed",
		"target": {"tier": "edge", "accelerator": "jetson-agx-orin"},
		"artifact": {"format": "onnx", "quantisation": "fp32", "memory_gb": 40},
	}},
	"deny": [],
}

cases["deny: unknown accelerator"] := {
	"input": edge,
	"patch": {"action": {"target": {"accelerator": "abacus"}}},
	"deny": ["unknown accelerator abacus (not in data.hardware.accelerators)"],
}

cases["deny: missing artifact fields are named"] := {
	"input": {"action": {"type": "steward.model.promoted", "target": edge.action.target}},
	"deny": ["action.artifact.format missing", "action.artifact.memory_gb missing", "action.artifact.quantisation missing"],
}

cases["deny: missing tier"] := {
	"input": {"action": {"type": "steward.model.promoted"}},
	"deny": ["action.target.tier missing"],
}

cases["allow: cloud target not checked"] := {
	"input": {"action": {"type": "steward.model.promoted", "target": {"tier": "cloud"}}},
	"deny": [],
}

cases["deny: capabilities come from data"] := {
	"input": edge,
	"data": {"hardware": {"accelerators": {"jetson-orin-nano": {"formats": ["onnx"]}}}},
	"deny": ["jetson-orin-nano cannot run format tensorrt (runs: [\"onnx\"])"],
}

cases["allow: retrain not governed"] := {
	"input": {"action": {"type": "steward.retrain.requested"}},
	"rule": "applies",
	"equals": false,
}
