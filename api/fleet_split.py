"""Edge versus cloud over a period, and what edge-first saved against cloud-only.

Both read the stored inference records of [since, until) (record time). Requests are
weighted by 1 / sample_rate, so sampling at an edge agent does not shrink its share;
latency percentiles are over the records themselves (sampling keeps records by id hash,
so the sample's latencies stand for the whole). A cloud record with `spillover_from`
is a request an edge site could not serve: it counts as cloud (it was served there) and
again as spillover of that site.

Savings price requests, not metered GPU time (metered cost is GET /cost): a request costs
$/GPU-hour of its card at its site (the price catalogue) / requests per GPU-hour. Its card
is the accelerator the record reports, else the configured default card of its tier. The
counterfactual serves every request on the configured cloud alternative. Requests whose
card has no price at their site are left out of both sides and counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from api.store import Store, conditions
from steward.gpu.prices import Catalogue, Flavour, SitePricing

QUANTILES = (0.5, 0.95, 0.99)
Positive = Annotated[float, Field(gt=0)]


class SavingsSettings(BaseModel):
    """The savings counterfactual and its assumptions (`STEWARD_FLEET_SAVINGS__*` on the API)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alternative_card: str = "H100-80GB"
    alternative_flavour: Flavour = "on-demand"
    alternative_cloud: str | None = "aws"
    requests_per_gpu_hour: Positive = 36_000.0
    """Throughput assumed for a card with no entry in `card_requests_per_gpu_hour`."""
    card_requests_per_gpu_hour: dict[str, Positive] = Field(default_factory=dict)
    edge_card: str = "A100-80GB"
    """The card of an edge record that reports no accelerator."""
    cloud_card: str = "H100-80GB"
    """The card of a cloud record that reports no accelerator."""
    period_s: int = Field(3600, ge=60)
    """The trailing period the fleet split and savings gauges cover."""


_TIERS = """
SELECT model, tier, count(*) AS records, sum(1 / sample_rate) AS requests,
       sum(CASE WHEN error THEN 1 / sample_rate ELSE 0 END) AS errors,
       quantile_cont(latency_ms, {q}) AS latency_ms
FROM inferences WHERE {where} GROUP BY ALL ORDER BY model, tier
"""
_SPILL = """
SELECT model, json_extract_string(record, '$.spillover_from') AS site,
       sum(1 / sample_rate) AS requests
FROM inferences WHERE {where} AND tier = 'cloud'
  AND json_extract_string(record, '$.spillover_from') IS NOT NULL
GROUP BY ALL ORDER BY model, site
"""
_CARDS = """
SELECT model, site, tier, json_extract_string(record, '$.hardware.accelerator') AS card,
       sum(1 / sample_rate) AS requests
FROM inferences WHERE {where} GROUP BY ALL ORDER BY model, site, tier, card
"""


@dataclass(frozen=True)
class FleetSplit:
    """Split and savings queries over the store, priced with `catalogue`."""

    store: Store
    catalogue: Catalogue
    settings: SavingsSettings
    clock: Callable[[], datetime]
    """The present the default period (and the gauges) look back from."""

    def _rows(self, sql: str, model: str | None, since: datetime,
              until: datetime) -> list[tuple[Any, ...]]:
        where, args = conditions({"model": model}, "ts", since, until)
        with self.store.cursor() as cur:
            return cur.execute(sql.format(where=where, q=list(QUANTILES)), args).fetchall()

    def split(self, model: str | None, since: datetime, until: datetime) -> dict[str, Any]:
        """Per model: per tier requests, share, error rate and latency percentiles, and
        spillover from edge sites to the cloud."""
        models: dict[str, dict[str, Any]] = {}
        for m, tier, records, requests, errors, lat in self._rows(_TIERS, model, since, until):
            tiers = models.setdefault(m, {"requests": 0.0, "tiers": {}, "spillover": {}})
            models[m]["requests"] += requests
            tiers["tiers"][tier] = {
                "records": records, "requests": requests, "errors": errors,
                "error_rate": errors / requests if requests else None,
                "latency_ms": {f"p{round(q * 100)}": v for q, v in zip(QUANTILES, lat,
                                                                      strict=True)}}
        for m, site, requests in self._rows(_SPILL, model, since, until):
            models[m]["spillover"][site] = requests
        for s in models.values():
            for t in s["tiers"].values():
                t["share"] = t["requests"] / s["requests"]
            spilled = sum(s["spillover"].values())
            edge = s["tiers"].get("edge", {}).get("requests", 0.0)
            s["spillover_requests"] = spilled
            s["spillover_share"] = spilled / (edge + spilled) if spilled else 0.0
        return {"since": since.isoformat(), "until": until.isoformat(), "models": models}

    def savings(self, model: str | None, since: datetime, until: datetime) -> dict[str, Any]:
        """Per model: the period's priced cost, the cloud-only counterfactual, the savings
        in dollars and percent, and the assumptions they rest on."""
        s = self.settings
        alt = self.catalogue.price(s.alternative_card, SitePricing(
            cloud=s.alternative_cloud, flavour=s.alternative_flavour))
        models: dict[str, dict[str, Any]] = {}
        for m, site, tier, card, requests in self._rows(_CARDS, model, since, until):
            card = card or (s.edge_card if tier == "edge" else s.cloud_card)
            row = models.setdefault(m, {"requests": 0.0, "priced_requests": 0.0,
                                        "unpriced_requests": 0.0, "actual_usd": 0.0,
                                        "by_site": []})
            row["requests"] += requests
            hourly = self.catalogue.hourly(card, site)
            if hourly is None or alt is None:
                row["unpriced_requests"] += requests
                continue
            cost = requests / self.throughput(card) * hourly
            row["priced_requests"] += requests
            row["actual_usd"] += cost
            row["by_site"].append({"site": site, "tier": tier, "card": card,
                                   "requests": requests, "usd_per_gpu_hour": hourly,
                                   "usd": cost})
        for row in models.values():
            cloud = row["priced_requests"] / self.throughput(s.alternative_card) * (alt or 0.0)
            row["cloud_only_usd"] = cloud
            row["savings_usd"] = cloud - row["actual_usd"]
            row["savings_pct"] = 100 * row["savings_usd"] / cloud if cloud else None
        return {"since": since.isoformat(), "until": until.isoformat(), "models": models,
                "assumptions": self.assumptions(alt, since, until)}

    def throughput(self, card: str) -> float:
        return self.settings.card_requests_per_gpu_hour.get(card,
                                                            self.settings.requests_per_gpu_hour)

    def assumptions(self, alt: float | None, since: datetime,
                    until: datetime) -> dict[str, Any]:
        s = self.settings
        return {
            "period_hours": (until - since).total_seconds() / 3600,
            "alternative": {"card": s.alternative_card, "flavour": s.alternative_flavour,
                            "cloud": s.alternative_cloud, "usd_per_gpu_hour": alt},
            "requests_per_gpu_hour": {**s.card_requests_per_gpu_hour,
                                      "default": s.requests_per_gpu_hour},
            "default_cards": {"edge": s.edge_card, "cloud": s.cloud_card},
            "cost_model": "requests / requests_per_gpu_hour(card) x $/GPU-hour of the card at "
                          "its site (price catalogue); requests weighted by 1/sample_rate; "
                          "unpriced requests left out of both sides. Priced, not metered "
                          "(GET /cost has metered GPU cost).",
        }
