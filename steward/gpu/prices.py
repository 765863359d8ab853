"""The price catalogue: $/GPU-hour per card type and flavour, and what a partition costs.

Cloud flavours (on-demand, spot, reserved) carry a price per cloud; edge hardware is
amortised: purchase price over its life in hours, plus its power at the site's $/kWh.
Each site says which cloud and flavour it buys (`[sites.NAME]`); sites not listed use
`default_flavour` from any cloud. A partition is charged its share of the card
(`compute_share`): allocated cost = card $/h x hours x share, used cost = card $/h x
hours x the card it used; the difference is the idle cost of the allocation
(OpenCost's efficiency = used / allocated). Time-sliced replicas whose values are
copies are charged the device's use split equally, so the card's use counts once.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from steward.schema.gpu import PartitionUsage

HOURS_PER_YEAR = 8760
Flavour = Literal["on-demand", "spot", "reserved", "edge"]
Money = Annotated[float, Field(ge=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Price(_Strict):
    """One card type in one flavour (and cloud)."""

    card: str
    flavour: Flavour
    cloud: str | None = None
    usd_per_gpu_hour: Money | None = None
    purchase_usd: Money | None = None
    life_years: Annotated[float, Field(gt=0)] | None = None
    power_watts: Money | None = None
    usd_per_kwh: Money | None = None

    @model_validator(mode="after")
    def _complete(self) -> Price:
        amortised = (self.purchase_usd, self.life_years, self.power_watts, self.usd_per_kwh)
        if self.usd_per_gpu_hour is None and None in amortised:
            raise ValueError(f"{self.card} {self.flavour}: give usd_per_gpu_hour, or "
                             "purchase_usd, life_years, power_watts and usd_per_kwh")
        return self

    @property
    def hourly(self) -> float:
        """$/GPU-hour: the listed price, or purchase / life hours + kW x $/kWh."""
        if self.usd_per_gpu_hour is not None:
            return self.usd_per_gpu_hour
        life_h = self.life_years * HOURS_PER_YEAR  # type: ignore[operator]
        return self.purchase_usd / life_h + self.power_watts / 1000 * self.usd_per_kwh  # type: ignore[operator]


class SitePricing(_Strict):
    cloud: str | None = None
    flavour: Flavour = "on-demand"


class Catalogue(_Strict):
    """Prices and which flavour each site buys."""

    default_flavour: Flavour = "on-demand"
    prices: list[Price] = Field(default_factory=list)
    sites: dict[str, SitePricing] = Field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Catalogue:
        with path.open("rb") as f:
            return cls.model_validate(tomllib.load(f))

    def hourly(self, card: str, site: str) -> float | None:
        """$/GPU-hour of `card` at `site`, or None when the catalogue has no price for it."""
        return self.price(card, self.sites.get(site, SitePricing(flavour=self.default_flavour)))

    def price(self, card: str, how: SitePricing) -> float | None:
        """$/GPU-hour of `card` bought as `how` says (any cloud when it names none), or None:
        the one lookup behind every price, a site's or a counterfactual's."""
        return next((p.hourly for p in self.prices if p.card == card
                     and p.flavour == how.flavour and how.cloud in (None, p.cloud)), None)

    def table(self) -> list[tuple[str, str | None, float]]:
        """(card, site or None for the default, $/h) for every priced pair: what SQL joins."""
        cards = sorted({p.card for p in self.prices})
        rows = [(c, s, h) for c in cards for s in sorted(self.sites)
                if (h := self.hourly(c, s)) is not None]
        default = SitePricing(flavour=self.default_flavour)
        return rows + [(c, None, h) for c in cards if (h := self.price(c, default)) is not None]


@dataclass(frozen=True)
class Cost:
    """What one partition window cost, in dollars."""

    allocated: float
    used: float | None

    @property
    def idle(self) -> float | None:
        return None if self.used is None else self.allocated - self.used


def cost_of(u: PartitionUsage, usd_per_gpu_hour: float) -> Cost:
    """A partition window's cost: its share of the card for the window's hours."""
    card = usd_per_gpu_hour * (u.window.end - u.window.start).total_seconds() / 3600
    if u.values_copied:
        used = None if u.device_compute_use is None else \
            card * u.device_compute_use * u.compute_share
    else:
        used = None if u.compute_card_use is None else card * u.compute_card_use
    return Cost(allocated=card * u.compute_share, used=used)
