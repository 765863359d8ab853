"""Drift judging: windows/s of Steward's adapter beside a full Evidently report per window.

Also, on the same windows: Steward's adapter with the calibrated verdict computed beside
Evidently's (what the drift judge runs), and the same from edge profiles (built once per
window, as an agent would; the build cost is shown apart), with the profile verdicts'
agreement with the raw ones.

    .venv/bin/python bench/drift.py [--windows 30] [--sizes 1000,10000] [--no-pin]

Per size, a reference and `--windows` windows of that many rows x 11 columns (9
numerical features, a numerical prediction, one 5-valued categorical), seeded; half
the windows shifted in some columns, a few NaN. The same windows, in the same run, go
through `Reference.judge` (the reference prepared once, its cost shown apart) and
through `Report([DataDriftPreset()]).run` each. Agreement: per window, every column's
test, threshold and drift flag, and the dataset verdict, equal the report's (scores
within 1e-9 relative). Pinned to one CPU with one BLAS thread unless `--no-pin`.
Prints a markdown table.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Callable  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _report import Results, add_json_arg  # noqa: E402

from processors.drift import ColumnSpec, DatasetVerdict, Reference  # noqa: E402
from processors.drift.evidently_report import ReportVerdict, reduce, run_snapshot  # noqa: E402
from processors.drift.models import CalibratedParams  # noqa: E402
from processors.drift.profile_judge import judge_profile  # noqa: E402
from steward.profiles import ProfileBuilder, spec_from_reference  # noqa: E402

FEATURES = [f"f{i}" for i in range(9)]
COLUMNS = [ColumnSpec(name=f, kind="numerical") for f in FEATURES] + [
    ColumnSpec(name="prediction", kind="numerical"),
    ColumnSpec(name="segment", kind="categorical"),
]
SEGMENTS = ["a", "b", "c", "d", "e"]
MIN_STEWARD_SECONDS = 1.5
CALIBRATED = CalibratedParams()
T0 = datetime(2026, 11, 23, tzinfo=UTC)


def frame(rng: np.random.Generator, rows: int, shift: float, shifted: set[str]) -> pd.DataFrame:
    """One window (or the reference, with shift 0): the columns above, a few NaN."""
    data = {f: rng.normal(shift if f in shifted else 0.0, 1.0, rows) for f in FEATURES}
    data["prediction"] = rng.beta(2 + (3 * shift if "prediction" in shifted else 0), 5, rows)
    weights = np.linspace(1, 1 + (4 * shift if "segment" in shifted else 0), len(SEGMENTS))
    data["segment"] = rng.choice(SEGMENTS, rows, p=weights / weights.sum())
    out = pd.DataFrame(data)
    out.loc[rng.random(rows) < 0.02, "f0"] = np.nan
    return out


def windows(rng: np.random.Generator, rows: int, count: int) -> list[pd.DataFrame]:
    """Half the windows drawn like the reference, half shifted in 2-8 columns."""
    names = [c.name for c in COLUMNS]
    out = []
    for i in range(count):
        if i % 2 == 0:
            out.append(frame(rng, rows, 0.0, set()))
            continue
        shifted = set(rng.choice(names, int(rng.integers(2, 9)), replace=False))
        out.append(frame(rng, rows, float(rng.choice([0.05, 0.2, 0.6])), shifted))
    return out


def agrees(ours: DatasetVerdict, theirs: ReportVerdict) -> bool:
    """Same columns, tests, thresholds, flags and dataset verdict; scores within 1e-9."""
    if set(ours.columns) != set(theirs.columns) or ours.dataset_drift != theirs.dataset_drift:
        return False
    for name, col in ours.columns.items():
        other = theirs.columns[name]
        if (col.stattest, col.threshold, col.drifted) != (other.stattest, other.threshold,
                                                          other.drifted):
            return False
        if not np.isclose(col.score, other.score, rtol=1e-9, atol=1e-12):
            return False
    return True


def time_steward(judge: Callable[[Any], DatasetVerdict], batch: list) -> tuple[float, list]:
    """Windows/s over repeated passes (at least MIN_STEWARD_SECONDS), and the verdicts."""
    verdicts = [judge(w) for w in batch]  # warm-up, and the verdicts compared
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < MIN_STEWARD_SECONDS:
        for w in batch:
            judge(w)
        done += len(batch)
    return done / (time.perf_counter() - start), verdicts


def profiles(reference_frame: pd.DataFrame, batch: list[pd.DataFrame]) -> tuple[list, float]:
    """Each window as the edge agent would profile it, and the ms per window it took."""
    kinds = {c.name: c.kind for c in COLUMNS}
    spec = spec_from_reference("bench", "1", kinds, "prediction",
                               reference_frame.to_dict("records"))
    start, out = time.perf_counter(), []
    for w in batch:
        builder = ProfileBuilder(spec)
        for row in w.to_dict("records"):
            prediction = row.pop("prediction")
            builder.add(row, prediction)
        out.append(builder.build("bench", "1", "site", None, T0, T0 + timedelta(minutes=5)))
    return out, (time.perf_counter() - start) * 1e3 / len(batch)


def time_reports(reference: pd.DataFrame, batch: list[pd.DataFrame]) -> tuple[float, list]:
    """Windows/s of a full Report per window (run only; reading it back not timed)."""
    snapshots, start = [], time.perf_counter()
    for w in batch:
        snapshots.append(run_snapshot(reference, w, COLUMNS))
    rate = len(batch) / (time.perf_counter() - start)
    return rate, [reduce(s) for s in snapshots]


def run_size(rows: int, count: int, seed: int) -> dict:
    rng = np.random.default_rng(seed + rows)
    reference_frame = frame(rng, rows, 0.0, set())
    batch = windows(rng, rows, count)
    start = time.perf_counter()
    reference = Reference(reference_frame, COLUMNS, prediction="prediction")
    build_ms = (time.perf_counter() - start) * 1e3
    ours_rate, ours = time_steward(reference.judge, batch)
    both_rate, both = time_steward(lambda w: reference.judge(w, CALIBRATED), batch)
    built, build_profile_ms = profiles(reference_frame, batch)
    prof_rate, prof = time_steward(lambda p: judge_profile(reference, p, CALIBRATED), built)
    theirs_rate, theirs = time_reports(reference_frame, batch)
    tests = Counter(c.stattest for c in ours[0].drift.columns)
    return {
        "rows": rows, "windows": count, "steward": ours_rate, "report": theirs_rate,
        "both": both_rate, "profile": prof_rate, "profile_build_ms": build_profile_ms,
        "profile_agree_ev": sum(p.dataset_drift == r.dataset_drift
                                for p, r in zip(prof, both, strict=True)),
        "profile_agree_cal": sum(p.calibrated.dataset_drift == r.calibrated.dataset_drift
                                 for p, r in zip(prof, both, strict=True)),
        "calibrated_drifted": sum(v.calibrated.dataset_drift for v in both),
        "build_ms": build_ms, "agree": sum(agrees(o, t) for o, t in zip(ours, theirs, strict=True)),
        "drifted": sum(v.dataset_drift for v in ours),
        "tests": ", ".join(f"{n} x{k}" for n, k in sorted(tests.items())),
    }


def table(results: list[dict]) -> str:
    lines = [
        "| rows x columns | tests per window | windows | Steward windows/s | full Report "
        "windows/s | speed-up | reference prep | agreement | dataset drift |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['rows']:,} x {len(COLUMNS)} | {r['tests']} | {r['windows']} | "
            f"{r['steward']:.1f} | {r['report']:.2f} | {r['steward'] / r['report']:.0f}x | "
            f"{r['build_ms']:.1f} ms | {r['agree']}/{r['windows']} "
            f"({100 * r['agree'] / r['windows']:.0f}%) | {r['drifted']}/{r['windows']} |")
    lines += [
        "",
        "| rows x columns | Evidently + calibrated windows/s | from profiles windows/s | "
        "profile build (agent) | profile = raw: Evidently's | profile = raw: calibrated | "
        "calibrated dataset drift |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['rows']:,} x {len(COLUMNS)} | {r['both']:.1f} | {r['profile']:.1f} | "
            f"{r['profile_build_ms']:.1f} ms | {r['profile_agree_ev']}/{r['windows']} | "
            f"{r['profile_agree_cal']}/{r['windows']} | "
            f"{r['calibrated_drifted']}/{r['windows']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=30)
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-pin", action="store_true")
    add_json_arg(parser)
    args = parser.parse_args()
    if not args.no_pin and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    warnings.simplefilter("ignore")  # Evidently's report warns about NaN in its plots
    sizes = [int(s) for s in args.sizes.split(",")]
    results = [run_size(rows, args.windows, args.seed) for rows in sizes]
    cpus = "1 CPU (pinned)" if not args.no_pin else f"{os.cpu_count()} CPUs"
    print(f"Drift judging, {cpus}, same windows in the same run; agreement = every column's "
          "test, threshold and flag, and the dataset verdict, equal the report's.\n")
    print(table(results))
    out = Results("drift")
    for r in results:
        base = f"full Evidently Report per window ({r['rows']:,} rows)"
        out.add(f"drift judge, {r['rows']:,}-row windows", r["steward"], "windows/s", base,
                r["report"], note=f"agreement {r['agree']}/{r['windows']}")
        out.add(f"drift judge + calibrated, {r['rows']:,}-row windows", r["both"], "windows/s",
                base, r["report"])
        out.add(f"drift judge from edge profiles, {r['rows']:,}-row windows", r["profile"],
                "windows/s", base, r["report"],
                note=f"profile = raw {r['profile_agree_cal']}/{r['windows']}")
    out.write(args.json)


if __name__ == "__main__":
    main()
