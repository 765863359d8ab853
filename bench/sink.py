"""Telemetry sink: inference records/s into the DuckDB store, beside DuckDB's bare append.

    .venv/bin/python bench/sink.py [--records 200000] [--batch 1000]

Three ways over the same records, each into a fresh file in a temp dir:

- `decode + store`: what the telemetry sink does per polled batch: decode the Kafka
  message values (validated records) and `Store.insert_inferences` (one set-based
  INSERT ... ON CONFLICT DO NOTHING per batch, the record JSON kept);
- `store`: `Store.insert_inferences` alone, records already decoded;
- baseline, same run: DuckDB's bare append (`DuckDBPyConnection.append` of a DataFrame
  with the same columns into a table with no key), the fastest plain way in.

Prints a markdown table.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
from _report import Results, add_json_arg

from api.store import INFERENCE_COLUMNS, Store
from steward.bus.service import tune_gc
from steward.codec import decode_batch, encode_batch
from steward.schema import InferenceRecord


def records(n: int) -> list[InferenceRecord]:
    now = datetime.now(UTC)
    return [InferenceRecord(id=f"r{i}", model="m", version="1", site=f"site-{i % 8}",
                            tier="edge", ts=now, latency_ms=12.5 + i % 7,
                            features={"amount": 10.0 + i, "channel": "pos"}, prediction=0.3)
            for i in range(n)]


def batches(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def timed_store(path: Path, groups: list[list[InferenceRecord]]) -> float:
    store = Store(path)
    started = time.perf_counter()
    for group in groups:
        store.insert_inferences([(r, 0, i) for i, r in enumerate(group)])
    elapsed = time.perf_counter() - started
    assert store.count_inferences() == sum(map(len, groups))
    store.close()
    return sum(map(len, groups)) / elapsed


def timed_decode_store(path: Path, values: list[bytes]) -> float:
    store = Store(path)
    started = time.perf_counter()
    n = 0
    for value in values:
        decoded = decode_batch(value, InferenceRecord)
        store.insert_inferences([(r, 0, i) for i, r in enumerate(decoded.items)])
        n += len(decoded.items)
    elapsed = time.perf_counter() - started
    store.close()
    return n / elapsed


def timed_bare(path: Path, groups: list[list[InferenceRecord]]) -> float:
    """DuckDB append of frames with the same columns (record JSON made beforehand)."""
    now = datetime.now(UTC)
    frames = [pd.DataFrame([[r.id, r.model, r.version, r.site, r.tier, r.node, r.ts,
                             r.latency_ms, r.error, r.sample_rate,
                             r.model_dump_json(by_alias=True), 0, i, now]
                            for i, r in enumerate(g)], columns=INFERENCE_COLUMNS)
              for g in groups]
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE inferences (id VARCHAR, model VARCHAR, version VARCHAR, "
                "site VARCHAR, tier VARCHAR, node VARCHAR, ts TIMESTAMPTZ, latency_ms DOUBLE, "
                "error BOOLEAN, sample_rate DOUBLE, record JSON, kafka_partition INTEGER, "
                "kafka_offset BIGINT, stored_at TIMESTAMPTZ)")
    started = time.perf_counter()
    for frame in frames:
        con.append("inferences", frame)
    elapsed = time.perf_counter() - started
    con.close()
    return sum(map(len, groups)) / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--default-gc", action="store_true",
                    help="keep CPython's GC thresholds (Steward's processes raise them)")
    add_json_arg(ap)
    args = ap.parse_args()
    if not args.default_gc:
        tune_gc()  # as the sink process does at start-up
    items = records(args.records)
    groups = batches(items, args.batch)
    values = [encode_batch(g) for g in groups]
    with tempfile.TemporaryDirectory() as tmp:
        bare = timed_bare(Path(tmp) / "bare.duckdb", groups)
        store = timed_store(Path(tmp) / "store.duckdb", groups)
        full = timed_decode_store(Path(tmp) / "full.duckdb", values)
    print(f"\n| {args.records:,} inference records, {args.batch} per batch | records/s | "
          "vs bare append |\n|---|---:|---:|")
    for label, rate in (("DuckDB bare append, same columns (baseline)", bare),
                        ("Store.insert_inferences (dedup by id)", store),
                        ("telemetry sink: decode + store", full)):
        print(f"| {label} | {rate:,.0f} | {rate / bare:.2f} |")
    out = Results("sink")
    base = "DuckDB bare append (no key), same columns"
    out.add("store: insert inference records (dedup by id)", store, "records/s", base, bare)
    out.add("telemetry sink: decode Kafka values + store", full, "records/s", base, bare)
    out.write(args.json)


if __name__ == "__main__":
    main()
