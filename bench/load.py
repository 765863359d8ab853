"""End to end under load: `steward bench load` against a stack it starts (embedded broker,
collector, processors, API/sink), beside bare kafka-python producing and consuming the
same bytes on the same machine in the same run.

    .venv/bin/python bench/load.py [--rate 100000] [--seconds 60] [--per-request 1000]
                                   [--early]

Figures: accepted/s at the collector, stored/s by the telemetry sink, end to end (records
stored / (run + drain)), arrival -> stored p99, telemetry crossing a rollback line ->
rollback on the actions topic p99 (10 canaries regressing during the run, 1 s windows;
`--early`: judged as records arrive, CanarySpec.early), and the peak RSS of the stack's
processes. The baseline moves the same messages (one per request, as the collector packs
them per model/site) through Kafka with nothing else: what any Kafka-based pipeline pays
at least.
"""

from __future__ import annotations

import argparse

from _report import Results, add_json_arg
from ingest import bare_produce

from steward.broker import EmbeddedBroker, free_port
from steward.bus.admin import ensure_topics, wait_ready
from steward.loadgen.report import figures, markdown
from steward.loadgen.run import LoadOptions, run_load
from steward.settings import KafkaSettings


def bare(per_request: int, seconds: float) -> tuple[float, float]:
    with EmbeddedBroker(free_port()) as broker:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers, topic_prefix="bare.")
        wait_ready(kafka)
        ensure_topics(kafka)
        return bare_produce(kafka, per_request, seconds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=100_000)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--per-request", type=int, default=1000)
    ap.add_argument("--canaries", type=int, default=10)
    ap.add_argument("--early", action=argparse.BooleanOptionalAction, default=False,
                    help="canaries judged early (CanarySpec.early), not only at window close")
    add_json_arg(ap)
    args = ap.parse_args()
    produce, consume = bare(args.per_request, min(args.seconds, 10))
    base_rate = 1 / (1 / produce + 1 / consume)
    result = run_load(LoadOptions(rate=args.rate, seconds=args.seconds,
                                  per_request=args.per_request, canaries=args.canaries,
                                  early=args.early))
    print(markdown(result))
    print(f"\nbaseline: bare kafka-python produce {produce:,.0f} records/s, consume "
          f"{consume:,.0f} records/s, one after the other {base_rate:,.0f} records/s")
    f = figures(result)
    out = Results("load")
    base = "bare kafka-python produce + consume, same bytes"
    note = f"{args.rate:,.0f}/s asked for {args.seconds:.0f} s"
    out.add("collector accepted (JSON records + OTLP points)", f["accepted_per_s"],
            "records/s", base, base_rate, target=">= 100000", note=note)
    out.add("telemetry sink stored during the run", f["stored_per_s"], "records/s", base,
            base_rate, target=">= 100000")
    if f["end_to_end_per_s"]:
        out.add("end to end: stored / (run + drain)", f["end_to_end_per_s"], "records/s",
                base, base_rate, target=">= 100000",
                note=f"drained {f['drained_after_s']:.1f} s after the run")
    out.add("arrival -> stored p99", f["stored_p99_s"] * 1000, "ms",
            note=f"{f['probes']} probes, polled every 50 ms")
    judged = "judged early (CanarySpec.early)" if args.early else "judged at window close"
    out.add("crossing a rollback line -> rollback on Kafka p99", f["rollback_p99_s"] * 1000,
            "ms", target="< 1000", note=f"{f['rollbacks_measured']}/{args.canaries} "
            f"canaries, 1 s windows, {judged}")
    if not args.early:  # an early rollback waits for no window: all of it is Steward's
        out.add("  of which after the window could close, p99",
                f["rollback_after_window_p99_s"] * 1000, "ms")
    out.add("stack peak RSS, all processes", f["rss_peak_total_mb"], "MB",
            note=", ".join(f"{k} {v:,.0f}" for k, v in sorted(f["rss_peak_mb"].items())))
    out.write(args.json)


if __name__ == "__main__":
    main()
