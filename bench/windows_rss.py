"""Memory with many live windows: the RSS of a processor holding `--keys` open (model, site)
windows, beside the same process before it held any.

    .venv/bin/python bench/windows_rss.py [--keys 10000] [--per-key 50]

Per processor, in a fresh process of its own: build it, note the RSS (the baseline: the
interpreter, the imports and the processor), then step `--per-key` inference records into
each of `--keys` (model, site) keys (100 models x keys/100 sites), all in one event-time
window that stays open (no tick, no later record), and note the RSS again. Records are
made one key at a time and dropped, so what grows is the processor's state.

- canary-latency: one spec per model watching every site (baseline and canary records,
  half each), so every key has a window of latency samples;
- drift-judge: a reference for every model (200 rows, two columns), so every key has a
  window of raw rows (`--per-key` of them, at least its `min_rows`: 50).

Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _report import Results, add_json_arg

T0 = datetime(2026, 1, 1, tzinfo=UTC)
MODELS = 100


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def build(name: str) -> tuple[Any, list[str]]:
    """The processor, and the versions its records carry."""
    if name == "canary-latency":
        from processors.canary_latency import CanaryLatency, CanarySpec
        specs = [CanarySpec(model=f"m{m}", baseline_version="1", canary_version="2",
                            window_s=3600, grace_s=60, min_samples=8) for m in range(MODELS)]
        return CanaryLatency(specs), ["1", "2"]
    if name == "drift-judge":
        import numpy as np

        from processors.drift.evidently_judge import EvidentlyJudge
        from processors.drift_judge import DriftJudge, DriftSpec
        from processors.references import ReferenceData
        rng = np.random.default_rng(0)
        rows = [{"amount": float(a), "score": float(s)}
                for a, s in zip(rng.normal(100, 10, 200), rng.random(200), strict=True)]
        refs = {f"m{m}": ReferenceData(f"m{m}", "1", {"amount": "numerical",
                                                      "score": "numerical"}, "score", rows)
                for m in range(MODELS)}
        return DriftJudge(DriftSpec(window_s=3600, grace_s=60, min_rows=50),
                          lambda m, v: refs.get(m), EvidentlyJudge()), ["1"]
    raise SystemExit(f"unknown processor {name}")


def one(name: str, keys: int, per_key: int) -> dict[str, float]:
    from steward.schema import InferenceRecord
    from steward.stream import Source

    proc, versions = build(name)
    state = proc.initial_state()
    before = rss_mb()
    sites = max(1, keys // MODELS)
    offset = 0
    for k in range(keys):
        model, site = f"m{k % MODELS}", f"s{k // MODELS:05d}"
        for i in range(per_key):
            rec = InferenceRecord(id=f"r{k}-{i}", model=model,
                                  version=versions[i % len(versions)], site=site,
                                  tier="edge", ts=T0 + timedelta(seconds=i % 60),
                                  latency_ms=20.0 + i % 7,
                                  features={"amount": 100.0 + i % 13}, prediction=0.5)
            state, _ = proc.step(state, rec, T0, Source("t", 0, offset))
            offset += 1
    return {"before_mb": before, "after_mb": rss_mb(), "keys": keys, "sites": sites}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=10_000)
    ap.add_argument("--per-key", type=int, default=50)
    ap.add_argument("--processors", default="canary-latency,drift-judge")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    add_json_arg(ap)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.keys, args.per_key)))
        return
    out = Results("windows_rss")
    print(f"\n| processor, {args.keys:,} live (model, site) windows x {args.per_key} records | "
          "RSS before | RSS with the windows | per window |\n|---|---:|---:|---:|")
    for name in args.processors.split(","):
        proc = subprocess.run([sys.executable, __file__, "--one", name, "--keys",
                               str(args.keys), "--per-key", str(args.per_key)],
                              capture_output=True, text=True, check=True)
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        per = (r["after_mb"] - r["before_mb"]) * 1024 / args.keys
        print(f"| {name} | {r['before_mb']:,.0f} MB | {r['after_mb']:,.0f} MB | {per:.1f} kB |")
        out.add(f"{name}: RSS with {args.keys:,} live (model, site) windows "
                f"({args.per_key} records each)", r["after_mb"], "MB",
                "same process before any window", r["before_mb"], target="< 500")
    out.write(args.json)


if __name__ == "__main__":
    main()
