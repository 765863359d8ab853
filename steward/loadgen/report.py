"""A load run as markdown and as flat figures (for `--json` and the bench report)."""

from __future__ import annotations

import math
from typing import Any

from steward.loadgen.run import LoadResult, pct


def _ms(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x * 1000:,.0f} ms"


def figures(r: LoadResult) -> dict[str, Any]:
    """Every headline number of a run, flat, JSON-ready (NaN when not measured)."""
    total = [t for t, _, _ in r.rollback]
    rest = [x for _, _, x in r.rollback]
    peak = {name: max(mb for _, mb in s) for name, s in r.rss.items() if s}
    return {
        "rate": r.opts.rate, "seconds": r.duration_s, "accepted": r.accepted,
        "otlp_points": r.otlp_points, "rejected": r.rejected,
        "refused": {str(k): v for k, v in r.refused.items()}, "errors": r.errors,
        "behind": r.behind, "accepted_per_s": r.accepted_per_s, "stored_per_s": r.stored_per_s,
        "drained_after_s": r.drained_after_s, "end_to_end_per_s": r.end_to_end_per_s,
        "stored_p50_s": pct(r.probe_latency_s, 50), "stored_p99_s": pct(r.probe_latency_s, 99),
        "probes": len(r.probe_latency_s), "rollbacks_measured": len(total),
        "canaries": r.opts.canaries, "canaries_rolled_back": r.canaries_rolled_back,
        "rollback_p50_s": pct(total, 50), "rollback_p99_s": pct(total, 99),
        "rollback_after_window_p99_s": pct(rest, 99), "rss_peak_mb": peak,
        "rss_peak_total_mb": sum(peak.values()),
    }


def markdown(r: LoadResult) -> str:
    f = figures(r)
    o = r.opts
    e2e = f"{f['end_to_end_per_s']:,.0f}/s" if f["end_to_end_per_s"] else "not drained"
    drained = f"{f['drained_after_s']:.1f} s" if f["drained_after_s"] is not None \
        else f"not within {o.drain_s:.0f} s"
    lines = [
        f"Load: {o.rate:,.0f} records/s asked for {o.seconds:.0f} s from {o.edge_nodes} edge + "
        f"{o.cloud_nodes} cloud nodes, {o.per_request} records per request, "
        f"every {o.otlp_every or 'no'}-th request OTLP protobuf; {o.canaries} canaries "
        f"(window {o.window_s} s, grace {o.grace_s} s).", "",
        "| figure | value |", "|---|---:|",
        f"| accepted/s (JSON records + OTLP points, acked by Kafka) | {f['accepted_per_s']:,.0f} |",
        f"| stored/s during the run (telemetry sink) | {f['stored_per_s']:,.0f} |",
        f"| backlog drained after the senders stopped | {drained} |",
        f"| end to end: inference records stored / (run + drain) | {e2e} |",
        f"| arrival -> stored p50 / p99 ({f['probes']} probes) | {_ms(f['stored_p50_s'])} / "
        f"{_ms(f['stored_p99_s'])} |",
        f"| crossing a rollback line -> rollback on Kafka p50 / p99 ({f['rollbacks_measured']} "
        f"of {o.canaries}) | {_ms(f['rollback_p50_s'])} / {_ms(f['rollback_p99_s'])} |",
        f"| of which after the window could close, p99 | "
        f"{_ms(f['rollback_after_window_p99_s'])} |",
        f"| refused (status: count), transport errors, late ticks | {f['refused'] or '-'}, "
        f"{f['errors']}, {f['behind']} |",
    ]
    if r.rss:
        names = sorted(r.rss)
        lines += ["", "RSS over time (MB):", "",
                  "| t (s) | " + " | ".join(names) + " |",
                  "|---:|" + "---:|" * len(names)]
        longest = max(len(s) for s in r.rss.values())
        step = max(1, longest // 8)
        for k in [*range(0, longest, step), longest - 1]:
            row = [r.rss[n][min(k, len(r.rss[n]) - 1)] for n in names]
            lines.append(f"| {row[0][0]:.0f} | " + " | ".join(f"{mb:,.0f}" for _, mb in row)
                         + " |")
        lines.append("| peak | " + " | ".join(f"{f['rss_peak_mb'][n]:,.0f}" for n in names)
                     + " |")
    return "\n".join(lines)
