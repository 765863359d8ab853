"""`make bench`: run every bench script, each in its own process, one after another, and
write one markdown table (bench/REPORT.md) with each figure beside its same-run baseline.

    .venv/bin/python bench/report.py [--quick] [--only ingest,sink] [--out bench/REPORT.md]

Each script writes its rows with `--json` (see `bench/_report.py`); a script that fails
or runs past its time limit is listed under the table with its exit status and the tail
of its output, and the others still run. `--quick` passes smaller sizes (a smoke run of
the whole report in a few minutes: its figures are not the ones to quote).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from _report import Row, load

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Script:
    name: str
    args: tuple[str, ...] = ()
    quick: tuple[str, ...] = ()
    limit_s: float = 600.0
    file: str = ""
    """The script (bench/<file>.py) when one runs twice under two names."""


SCRIPTS = (
    Script("ingest", ("--seconds", "8"), ("--seconds", "2")),
    Script("sink", (), ("--records", "20000")),
    Script("load", ("--rate", "12000", "--seconds", "20"),
           ("--rate", "8000", "--seconds", "8"), limit_s=420),
    Script("load_sustained", ("--rate", "4000", "--seconds", "30", "--early"),
           ("--rate", "3000", "--seconds", "10", "--early"), limit_s=420, file="load"),
    Script("windows_rss", (), ("--keys", "1000")),
    Script("rollback_latency", (), ("--canaries", "6", "--spacing", "0.3")),
    Script("governance", (), ("--seconds", "0.5")),
    Script("drift", (), ("--windows", "6", "--sizes", "1000")),
    Script("canary", (), ("--rollouts", "200")),
    Script("gpu", (), ("--partitions", "100", "--days", "3", "--samples", "20000")),
    Script("agent", (), ("--seconds", "2", "--forward-entries", "50")),
)


@dataclass
class Outcome:
    script: Script
    rows: list[Row]
    seconds: float
    error: str = ""


def run(script: Script, quick: bool, tmp: Path) -> Outcome:
    out = tmp / f"{script.name}.json"
    cmd = [sys.executable, str(HERE / f"{script.file or script.name}.py"),
           *(script.quick if quick else script.args), "--json", str(out)]
    print(f"== {script.name}: {' '.join(cmd[1:])}", flush=True)
    started = time.monotonic()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                              timeout=script.limit_s, cwd=HERE.parent)
    except subprocess.TimeoutExpired as exc:
        tail = (exc.stdout or b"")[-1500:]
        tail = tail.decode(errors="replace") if isinstance(tail, bytes) else tail
        return Outcome(script, [], time.monotonic() - started,
                       f"timed out after {script.limit_s:.0f} s\n{tail}")
    seconds = time.monotonic() - started
    print(proc.stdout[-4000:], flush=True)
    if proc.returncode != 0 or not out.exists():
        return Outcome(script, [], seconds, f"exit status {proc.returncode}\n"
                       f"{(proc.stdout + proc.stderr)[-1500:]}")
    return Outcome(script, load(out)[1], seconds)


def number(value: float | None) -> str:
    if value is None:
        return ""
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.2f}" if abs(value) >= 1 else f"{value:.3g}"


def table(outcomes: list[Outcome]) -> list[str]:
    lines = ["| bench | figure | value | unit | baseline (same run) | baseline value | "
             "ratio | target | met |", "|---|---|---:|---|---|---:|---:|---|---|"]
    for o in outcomes:
        for r in o.rows:
            ratio = f"{r.ratio:.2f}x" if r.ratio is not None else ""
            met = {True: "yes", False: "**no**", None: ""}[r.met]
            note = f" ({r.note})" if r.note else ""
            lines.append(f"| {o.script.name} | {r.figure}{note} | {number(r.value)} | {r.unit} | "
                         f"{r.baseline} | {number(r.baseline_value)} | {ratio} | "
                         f"{r.target} | {met} |")
    return lines


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, cwd=HERE.parent).stdout.strip()
    except OSError:
        commit = ""
    return (f"{cpu}, {cores} cores, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}, commit {commit or '?'}")


def write(path: Path, outcomes: list[Outcome], quick: bool, started: datetime,
          elapsed: float) -> None:
    lines = ["# Steward benchmark report", "",
             f"Written by `make bench` (`bench/report.py{' --quick' if quick else ''}`) on "
             f"{started:%Y-%m-%d %H:%M} UTC in {elapsed / 60:.1f} min: {machine()}.", "",
             "Every figure stands beside a baseline measured in the same run on the same "
             "machine; the ratio is value / baseline (for times, lower is better). Absolute "
             "figures move with the machine and its load; the ratios are what to compare. "
             "Each bench script documents what it measures (`bench/<name>.py --help`).", ""]
    if quick:
        lines += ["**Quick run (`--quick`): small sizes, a smoke test of the report; do not "
                  "quote these figures.**", ""]
    lines += table(outcomes)
    lines += ["", "| bench | seconds | status |", "|---|---:|---|"]
    lines += [f"| {o.script.name} | {o.seconds:.0f} | "
              f"{'ok' if not o.error else o.error.splitlines()[0]} |" for o in outcomes]
    for o in (o for o in outcomes if o.error):
        lines += ["", f"### {o.script.name} failed", "", "```", o.error.strip()[-1500:], "```"]
    notes = HERE / "NOTES.md"
    if notes.exists():
        lines += ["", notes.read_text().strip()]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    ap.add_argument("--only", default="", help="comma-separated script names")
    ap.add_argument("--out", type=Path, default=HERE / "REPORT.md")
    args = ap.parse_args()
    only = {s for s in args.only.split(",") if s}
    unknown = only - {s.name for s in SCRIPTS}
    if unknown:
        sys.exit(f"unknown bench scripts: {', '.join(sorted(unknown))}")
    started, began = datetime.now(UTC), time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        outcomes = [run(s, args.quick, Path(tmp)) for s in SCRIPTS
                    if not only or s.name in only]
    write(args.out, outcomes, args.quick, started, time.monotonic() - began)
    print(f"wrote {args.out} in {(time.monotonic() - began) / 60:.1f} min")
    failed = [o.script.name for o in outcomes if o.error]
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
