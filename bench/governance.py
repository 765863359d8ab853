"""Policy evaluation: decisions/s and p50/p99 latency of the embedded engine.

    .venv/bin/python bench/governance.py [--seconds 2] [--rules rules]

Evaluates `steward/gate/decision` on the example inputs (rules/examples/*.json, in
turn) with the embedded regopy engine:

- `gate`: evaluation alone;
- `gate + log`: each evaluation also becomes a `Decision` record (the decision log's
  shape: input, result, reasons, revision), serialised to JSON and appended to a file,
  as a decision log writer would;
- `gate, 2 threads (lock)` / `(per_thread)`: two threads sharing one engine, evaluation
  serialised by its lock, or one interpreter per thread;
- baseline, same run: `allow := true` (a trivial policy through the same engine: the
  engine's fixed cost per call), and a bare Python function doing the gate's checks
  for the promotion example (what Rego costs over plain code).

Prints a markdown table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import regopy
from _report import Results, add_json_arg

from steward.governance.bundle import load_bundle
from steward.governance.embedded import EmbeddedEngine
from steward.governance.policytest import load_examples
from steward.schema.governance import Decision

GATE = "steward/gate/decision"


def run(fn, inputs, seconds: float, threads: int = 1) -> tuple[float, list[float]]:
    """Calls/s and per-call latencies (ms) of fn(input) for `seconds`."""
    lat: list[float] = []
    count = [0]
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def worker(offset: int) -> None:
        mine: list[float] = []
        i = offset
        while time.perf_counter() < stop:
            inp = inputs[i % len(inputs)]
            t = time.perf_counter()
            fn(inp)
            mine.append((time.perf_counter() - t) * 1000.0)
            i += 1
        with lock:
            lat.extend(mine)
            count[0] += len(mine)

    start = time.perf_counter()
    ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return count[0] / (time.perf_counter() - start), lat


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def bare_python(data: dict, inp: dict) -> dict:
    """The gate's promotion checks in plain Python (one policy path, no prefixes/sorting
    beyond what Rego does): a baseline, not a second implementation."""
    a, ev = inp.get("action", {}), inp.get("evidence", {})
    deny = []
    thresholds = data["promotion"]["thresholds"]
    th = thresholds.get(a.get("model"), thresholds["default"])
    for metric, limit in th.items():
        v = ev.get("eval", {}).get(metric)
        if v is None:
            deny.append(f"promotion: evidence.eval.{metric} missing")
        elif "min" in limit and v < limit["min"]:
            deny.append(f"promotion: eval {metric} {v} below minimum {limit['min']}")
        elif "max" in limit and v > limit["max"]:
            deny.append(f"promotion: eval {metric} {v} above maximum {limit['max']}")
    if ev.get("canary", {}).get("verdict") != "pass":
        deny.append("promotion: canary verdict is not pass")
    budget = data["budgets"]["teams"].get(a.get("team"), {}).get("gpu_usd", 0)
    cost = ev.get("cost", {})
    if cost.get("team_spent_usd", 0) + cost.get("estimated_usd", 0) > budget:
        deny.append("budget: exceeded")
    region = a.get("target", {}).get("region")
    if region not in data["residency"]["models"].get(a.get("model"), []):
        deny.append("residency: region")
    return {"allow": not deny, "deny": sorted(deny), "rules": []}


def bare_regopy(rules: str):
    """regopy alone: one Interpreter with the same data and modules, `set_input_term` +
    `query` of the same rule, output not parsed (what any regopy caller pays)."""
    bundle = load_bundle(rules)
    interp = regopy.Interpreter()
    interp.add_data(bundle.data)
    for module in bundle.modules:
        interp.add_module(module.path, module.text)

    def evaluate(inp: dict) -> object:
        interp.set_input_term(json.dumps(inp))
        return interp.query("data.steward.gate.decision")
    return evaluate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rules", default=str(Path(__file__).resolve().parents[1] / "rules"))
    add_json_arg(parser)
    args = parser.parse_args()
    examples = load_examples(args.rules)
    inputs = [e["input"] for e in examples.values()]
    engine = EmbeddedEngine(args.rules)
    per_thread = EmbeddedEngine(args.rules, threads="per_thread")

    log_file = tempfile.NamedTemporaryFile("a", suffix=".jsonl", delete=False)  # noqa: SIM115

    def gate_and_log(inp: dict) -> None:
        ev = engine.evaluate(GATE, inp)
        body = json.dumps(inp, sort_keys=True, separators=(",", ":"))
        decision_id = hashlib.sha256(f"{ev.revision}:{body}".encode()).hexdigest()[:32]
        result = ev.result or {}
        d = Decision(decision_id=decision_id, path=GATE, input=inp, result=ev.result,
                     allowed=bool(result.get("allow")) and ev.error is None,
                     reasons=result.get("deny", []) if ev.error is None else [ev.error],
                     revision=ev.revision, engine="embedded", error=ev.error,
                     timestamp=datetime.now(UTC), proposal_id=decision_id,
                     proposal_type=inp.get("action", {}).get("type", ""),
                     proposal_source="bench", elapsed_ms=ev.elapsed_ms)
        log_file.write(d.model_dump_json(by_alias=True) + "\n")

    trivial_dir = Path(tempfile.mkdtemp())
    (trivial_dir / "t.rego").write_text("package steward.gate\n\ndecision := {\"allow\": true}\n")
    trivial = EmbeddedEngine(trivial_dir)
    data = json.loads((Path(args.rules) / "data.json").read_text())

    rows = [
        ("gate", lambda i: engine.evaluate(GATE, i), inputs, 1),
        ("gate + log (Decision JSON appended to a file)", gate_and_log, inputs, 1),
        ("gate, 2 threads (lock)", lambda i: engine.evaluate(GATE, i), inputs, 2),
        ("gate, 2 threads (per_thread)", lambda i: per_thread.evaluate(GATE, i), inputs, 2),
        ("baseline: `allow := true` through the engine", lambda i: trivial.evaluate(GATE, i),
         inputs, 1),
        ("baseline: bare Python checks", lambda i: bare_python(data, i), inputs, 1),
        ("baseline: bare regopy `set_input_term` + `query` (compiled per call), same rules",
         bare_regopy(args.rules), inputs, 1),
    ]
    measured: dict[str, tuple[float, list[float]]] = {}
    print(f"examples: {len(inputs)} inputs, revision {engine.revision}, "
          f"{args.seconds:g} s per row\n")
    print("| run | decisions/s | p50 ms | p99 ms |")
    print("| --- | ---: | ---: | ---: |")
    for name, fn, inp, threads in rows:
        fn(inp[0])  # warm (compiles per-thread interpreters on first use)
        rate, lat = run(fn, inp, args.seconds, threads)
        measured[name] = rate, lat
        print(f"| {name} | {rate:,.0f} | {pct(lat, 50):.3f} | {pct(lat, 99):.3f} |")
    log_file.close()
    Path(log_file.name).unlink()
    out = Results("governance")
    bare_name = rows[-1][0]
    bare_rate, bare_lat = measured[bare_name]
    for name, _, _, _ in rows[:4]:
        rate, lat = measured[name]
        out.add(f"policy {name}: decisions/s", rate, "decisions/s",
                "bare regopy query (compiled per call)", bare_rate)
    out.add("policy gate: p99 latency", pct(measured["gate"][1], 99), "ms",
            "bare regopy query p99", pct(bare_lat, 99))
    out.write(args.json)


if __name__ == "__main__":
    main()
