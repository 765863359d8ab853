"""Prometheus gauges of the fleet, read from the store at scrape time: the events stored
per type (actions, alerts, denials: rollbacks, promotions, retraining requests, GPU and
budget alerts), and when each site was last heard from (a stored inference record, or a
drift window judged from a site's records or its edge agent's profiles)."""

from __future__ import annotations

from typing import Any

from api.store import Store

_EVENTS = "SELECT type, coalesce(model, ''), count(*) FROM events GROUP BY ALL"
_SEEN = """
SELECT site, max(seen) FROM (
    SELECT site, max(ts) AS seen FROM inferences GROUP BY site
    UNION ALL
    SELECT site, max(window_end) AS seen FROM drift_verdicts GROUP BY site
) GROUP BY site
"""


class FleetGauges:
    """`steward_events{type,model}` and `steward_site_last_seen_timestamp_seconds{site}`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Any:
        from prometheus_client.core import GaugeMetricFamily

        events = GaugeMetricFamily(
            "steward_events", "CloudEvents stored (actions, alerts, denials), by type and "
            "model.", labels=["type", "model"])
        seen = GaugeMetricFamily(
            "steward_site_last_seen_timestamp_seconds", "When the site was last heard from: "
            "its newest stored inference record or judged drift window (Unix seconds).",
            labels=["site"])
        with self.store.cursor() as cur:
            for etype, model, n in cur.execute(_EVENTS).fetchall():
                events.add_metric([etype, model], n)
            for site, ts in cur.execute(_SEEN).fetchall():
                if ts is not None:
                    seen.add_metric([site], ts.timestamp())
        yield from (events, seen)
