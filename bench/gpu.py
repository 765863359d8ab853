"""GPU partitions: samples/s through the usage processor's step and the DCGM parser, and
the GET /cost query over a month of 1-minute windows for 1,000 partitions.

    .venv/bin/python bench/gpu.py [--partitions 1000] [--days 30] [--samples 200000]

Baselines in the same run: a bare Python loop touching the same samples (what any step
costs at least), and a bare DuckDB sum over the same rows without the price join.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _report import Results, add_json_arg

from processors.gpu_usage import GpuSpec, GpuUsage
from steward.gpu.dcgm import Series, to_samples
from steward.gpu.prices import Catalogue
from steward.schema import GpuSample
from steward.stream import Source

REPO = Path(__file__).resolve().parents[1]
T0 = datetime(2025, 1, 1, tzinfo=UTC)
PROFILES = ("3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb")


def make_samples(n: int) -> list[GpuSample]:
    """n samples of 250 four-instance H100s, one every 15 s per instance."""
    out = []
    for i in range(n):
        card, gi = divmod(i % 1000, 4)
        out.append(GpuSample(ts=T0 + timedelta(seconds=15 * (i // 1000)), site="eu-west-1",
                             tier="cloud", node=f"n{card // 8}", gpu_uuid=f"GPU-{card}",
                             card="H100-80GB", profile=PROFILES[gi], instance_id=gi + 1,
                             team=f"t{card % 10}", compute_active=(i % 100) / 100,
                             mem_used_bytes=2**30, mem_total_bytes=10 * 2**30))
    return out


def bench_step(samples: list[GpuSample]) -> tuple[float, float]:
    proc = GpuUsage(GpuSpec(window_s=60, grace_s=0))
    state = proc.initial_state()
    started = time.perf_counter()
    for i, s in enumerate(samples):
        state, _ = proc.step(state, s, s.ts, Source("gpu", 0, i))
    step_rate = len(samples) / (time.perf_counter() - started)
    started = time.perf_counter()
    total = 0.0
    for s in samples:
        total += (s.compute_active or 0) * 3 / 7
    return step_rate, len(samples) / (time.perf_counter() - started)


def bench_parse(n: int) -> float:
    card = {"Hostname": "n1", "modelName": "NVIDIA H100 80GB HBM3"}
    series = [Series("DCGM_FI_PROF_GR_ENGINE_ACTIVE",
                     {**card, "UUID": f"GPU-{i // 4}", "GPU_I_PROFILE": PROFILES[i % 4],
                      "GPU_I_ID": str(i % 4 + 1)}, 0.5)
              for i in range(n)]
    started = time.perf_counter()
    parsed = to_samples(series, T0, {"site": "s"})
    assert len(parsed.samples) == n
    return n / (time.perf_counter() - started)


def bench_cost(partitions: int, days: int) -> tuple[int, float, float, float]:
    from api.gpu import GpuStore
    from api.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.duckdb")
        gpu = GpuStore(store, Catalogue.load(REPO / "config" / "gpu-prices.toml"))
        minutes = days * 24 * 60
        started = time.perf_counter()
        with store.cursor() as cur:
            cur.execute(f"""
                INSERT INTO gpu_usage SELECT
                  p || '@' || m, 'n/G' || (p // 4) || '/mig' || (p % 4),
                  TIMESTAMPTZ '2025-01-01 00:00:00+00' + INTERVAL 1 MINUTE * m,
                  TIMESTAMPTZ '2025-01-01 00:01:00+00' + INTERVAL 1 MINUTE * m,
                  'eu-west-1', 'cloud', 'n' || (p // 32), 'G' || (p // 4), 'H100-80GB',
                  '1g.10gb', 'model' || (p % 50), '1', 'team' || (p % 10), 1.0 / 7,
                  (m % 100) / 100.0, (m % 100) / 700.0, 0.5, FALSE, NULL, '{{}}', now()
                FROM range({partitions}) r1(p), range({minutes}) r2(m)""")
        load_s = time.perf_counter() - started
        rows = partitions * minutes
        since, until = T0, T0 + timedelta(days=days)
        started = time.perf_counter()
        result = gpu.cost(["team"], since, until)
        team_s = time.perf_counter() - started
        assert len(result["groups"]) == 10
        started = time.perf_counter()
        with store.cursor() as cur:
            cur.execute("SELECT team, sum(compute_share) FROM gpu_usage GROUP BY team").fetchall()
        bare_s = time.perf_counter() - started
        store.close()
    return rows, load_s, team_s, bare_s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--partitions", type=int, default=1000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--samples", type=int, default=200_000)
    add_json_arg(ap)
    args = ap.parse_args()
    samples = make_samples(args.samples)
    step_rate, bare_rate = bench_step(samples)
    parse_rate = bench_parse(min(args.samples, 100_000))
    rows, load_s, cost_s, bare_s = bench_cost(args.partitions, args.days)
    print("| what | figure | baseline (same run) |\n| --- | --- | --- |")
    print(f"| gpu-usage step | {step_rate:,.0f} samples/s | bare loop {bare_rate:,.0f}/s |")
    print(f"| DCGM series -> samples | {parse_rate:,.0f} series/s | |")
    print(f"| GET /cost by team, {rows:,} windows ({args.partitions} partitions x "
          f"{args.days} d x 1 min) | {cost_s:.2f} s | bare DuckDB group-by {bare_s:.2f} s; "
          f"loading took {load_s:.1f} s |")

    out = Results("gpu")
    out.add("gpu-usage processor step", step_rate, "samples/s", "bare Python loop over the samples",
            bare_rate)
    out.add("DCGM series -> samples", parse_rate, "series/s")
    out.add(f"GET /cost by team over {rows:,} partition-minutes", cost_s, "s",
            "bare DuckDB group-by, no price join", bare_s)
    out.write(args.json)


if __name__ == "__main__":
    main()
