"""Prometheus gauges of the fleet view, read from the store at scrape time: nodes per
state, offline share, stragglers, last seen and spool backlog per node (from the stored
snapshots), and the edge/cloud split and savings over the trailing configured period."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from api.fleet import FleetQuery, FleetStore, summary
from api.fleet_split import QUANTILES, FleetSplit


class FleetViewGauges:
    """`steward_fleet_*` families; see docs/fleet.md for each."""

    def __init__(self, fleet: FleetStore, split: FleetSplit) -> None:
        self.fleet = fleet
        self.split = split

    def collect(self) -> Any:
        yield from self._nodes()
        yield from self._split()

    def _nodes(self) -> Any:
        from prometheus_client.core import GaugeMetricFamily as G

        nodes = G("steward_fleet_nodes", "Nodes per state, from their latest snapshot.",
                  labels=["model", "site", "tier", "state"])
        offline = G("steward_fleet_offline_ratio", "Offline nodes / nodes known, per model.",
                    labels=["model"])
        stragglers = G("steward_fleet_straggler_nodes", "Nodes serving a version the site's "
                       "last promotion or rollback does not accept.", labels=["model", "site"])
        seen = G("steward_fleet_node_last_seen_timestamp_seconds", "Newest record time of "
                 "the node (Unix seconds).", labels=["model", "site", "node"])
        backlog = G("steward_fleet_agent_backlog_records", "Records waiting in the node's "
                    "edge agent spool, as its newest record said.", labels=["site", "node"])
        all_nodes = self.fleet.nodes(FleetQuery())
        counts: dict[tuple[str, ...], int] = {}
        straggling: dict[tuple[str, str], int] = {}
        backlogs: dict[tuple[str, str], int] = {}
        for n in all_nodes:
            key = (n["model"], n["site"], n["tier"], n["state"])
            counts[key] = counts.get(key, 0) + 1
            site = (n["model"], n["site"])
            straggling[site] = straggling.get(site, 0) + int(n["straggler"])
            seen.add_metric([n["model"], n["site"], n["node"] or ""],
                            datetime.fromisoformat(n["last_seen"]).timestamp())
            if n.get("agent_backlog") is not None:
                backlogs[(n["site"], n["node"] or "")] = n["agent_backlog"]
        for key, c in sorted(counts.items()):
            nodes.add_metric(list(key), c)
        for site, c in sorted(straggling.items()):
            stragglers.add_metric(list(site), c)
        for site_node, b in sorted(backlogs.items()):
            backlog.add_metric(list(site_node), b)
        for model, s in sorted(summary(all_nodes).items()):
            offline.add_metric([model], s["offline_share"])
        yield from (nodes, offline, stragglers, seen, backlog)

    def _split(self) -> Any:
        from prometheus_client.core import GaugeMetricFamily as G

        span = f"over the last {self.split.settings.period_s} s"
        requests = G("steward_fleet_requests", f"Requests served (sampling undone) {span}.",
                     labels=["model", "tier"])
        share = G("steward_fleet_request_share_ratio", f"Share of the model's requests {span}.",
                  labels=["model", "tier"])
        errors = G("steward_fleet_error_ratio", f"Failed / all requests {span}.",
                   labels=["model", "tier"])
        latency = G("steward_fleet_latency_seconds", f"Latency percentiles of records {span}.",
                    labels=["model", "tier", "quantile"])
        spill = G("steward_fleet_spillover_requests", f"Requests an edge site spilled over "
                  f"to the cloud {span}.", labels=["model", "site"])
        cost = G("steward_fleet_cost_usd", f"Priced serving cost {span}: scenario actual, "
                 "or cloud_only (every request on the configured alternative).",
                 labels=["model", "scenario"])
        saved = G("steward_fleet_savings_usd", f"cloud_only - actual cost {span}.",
                  labels=["model"])
        saved_ratio = G("steward_fleet_savings_ratio", f"Savings / cloud_only cost {span}.",
                        labels=["model"])
        until = self.split.clock()
        since = until - timedelta(seconds=self.split.settings.period_s)
        for model, s in self.split.split(None, since, until)["models"].items():
            for tier, t in s["tiers"].items():
                requests.add_metric([model, tier], t["requests"])
                share.add_metric([model, tier], t["share"])
                if t["error_rate"] is not None:
                    errors.add_metric([model, tier], t["error_rate"])
                for q, ms in zip(QUANTILES, t["latency_ms"].values(), strict=True):
                    latency.add_metric([model, tier, str(q)], ms / 1000)
            for site, n in s["spillover"].items():
                spill.add_metric([model, site], n)
        for model, s in self.split.savings(None, since, until)["models"].items():
            cost.add_metric([model, "actual"], s["actual_usd"])
            cost.add_metric([model, "cloud_only"], s["cloud_only_usd"])
            saved.add_metric([model], s["savings_usd"])
            if s["savings_pct"] is not None:
                saved_ratio.add_metric([model], s["savings_pct"] / 100)
        yield from (requests, share, errors, latency, spill, cost, saved, saved_ratio)
