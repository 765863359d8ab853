"""Prometheus metrics of the edge agent; built once per registry, passed in.

Counters say where every record went (spooled, forwarded, dropped by the spool
policy, refused to the local client, dead-lettered locally, rejected upstream);
gauges read the spool itself at scrape time, so they are right after a restart.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge

from collector.agent.signals import SIGNALS
from collector.agent.spool import Totals

DROP_REASONS = ("spool-full", "dead-table-full")


class AgentMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        def counter(name: str, doc: str, labels: list[str]) -> Counter:
            return Counter(f"steward_agent_{name}_total", doc, labels, registry=registry)

        self.requests = counter("requests", "Local intake requests, by route and status code.",
                                ["route", "code"])
        self.spooled_records = counter("spooled_records", "Records committed to the spool.",
                                       ["signal"])
        self.spooled_entries = counter("spooled_entries", "Entries (accepted requests) "
                                       "committed to the spool.", ["signal"])
        self.forwarded_records = counter("forwarded_records", "Records the collector "
                                         "acknowledged (200), rejected ones included.", ["signal"])
        self.forwarded_entries = counter("forwarded_entries", "Entries the collector "
                                         "acknowledged and the spool deleted.", ["signal"])
        self.dropped_records = counter("dropped_records", "Records deleted unsent: oldest "
                                       "entries of a full spool (drop-oldest) or oldest dead "
                                       "entries past their cap.", ["signal", "reason"])
        self.dropped_entries = counter("dropped_entries", "Entries deleted unsent, as "
                                       "dropped_records.", ["signal", "reason"])
        self.refused_records = counter("refused_records", "Records refused to local clients "
                                       "with 503 because the spool was full (refuse-newest).",
                                       ["signal"])
        self.sampled_out_records = counter("sampled_out_records", "Inference records left "
                                           "out by sampling (sample_rate < 1).", ["signal"])
        self.dead_records = counter("dead_records", "Records moved to the local dead table: "
                                    "the collector refused their entry alone (400/413).",
                                    ["signal"])
        self.rejected_records = counter("rejected_records", "Records the collector rejected "
                                        "inside a 200 (it dead-letters them upstream).",
                                        ["signal"])
        self.attempts = counter("forward_attempts", "Upstream requests, by outcome and HTTP "
                                "status ('none': no answer).", ["outcome", "code"])
        self.profiles_built = Counter(
            "steward_agent_profiles_built_total", "Feature profiles built from closed "
            "windows and spooled (profile mode).", registry=registry)
        self.profiled_rows = Counter(
            "steward_agent_profiled_rows_total", "Inference records summarised in the "
            "profiles built.", registry=registry)
        self.replaced_records = Counter(
            "steward_agent_replaced_records_total", "Inference records not forwarded raw "
            "because a profile carries them (profile mode, columns_raw off).",
            registry=registry)
        self.link_up = Gauge("steward_agent_link_up", "1 when the last upstream request was "
                             "acknowledged, 0 after a failure (or before any).",
                             registry=registry)
        self._registry = registry
        for name in SIGNALS:
            for c in (self.spooled_records, self.forwarded_records, self.refused_records,
                      self.dead_records, self.rejected_records):
                c.labels(name)
            for reason in DROP_REASONS:
                self.dropped_records.labels(name, reason)

    def watch(self, totals: Callable[[], Totals], clock: Callable[[], float]) -> None:
        """Spool gauges, read from the spool on every scrape."""
        def gauge(name: str, doc: str, read: Callable[[Totals], float]) -> None:
            Gauge(f"steward_agent_{name}", doc, registry=self._registry).set_function(
                lambda: read(totals()))

        gauge("spool_bytes", "Payload bytes waiting in the spool.", lambda t: t.bytes)
        gauge("spool_entries", "Entries waiting in the spool.", lambda t: t.entries)
        gauge("spool_records", "Records waiting in the spool.", lambda t: t.records)
        gauge("spool_oldest_age_seconds", "Age of the oldest entry waiting (0 when empty).",
              lambda t: max(0.0, clock() - t.oldest_created_at) if t.oldest_created_at else 0.0)
        gauge("dead_entries", "Entries in the local dead table.", lambda t: t.dead_entries)
        gauge("dead_bytes", "Payload bytes in the local dead table.", lambda t: t.dead_bytes)
