"""The price catalogue and a partition's cost, against figures worked by hand."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from steward.gpu.prices import Catalogue, Price, cost_of
from steward.schema import Window
from steward.schema.gpu import PartitionUsage
from tests.gpu_support import T0

REPO = Path(__file__).resolve().parents[3]
CATALOGUE = Catalogue.load(REPO / "config" / "gpu-prices.toml")


def test_site_flavours_and_defaults() -> None:
    assert CATALOGUE.hourly("H100-80GB", "eu-west-1") == 7.00  # aws on-demand
    assert CATALOGUE.hourly("H100-80GB", "somewhere") == 7.00  # default flavour
    assert CATALOGUE.hourly("H100-80GB", "factory-berlin") is None  # no edge H100 priced
    assert CATALOGUE.hourly("T4", "eu-west-1") is None


def test_edge_hardware_is_amortised_plus_power() -> None:
    # 17,520 $ over 2 years (17,520 h) = 1.00 $/h; 0.4 kW x 0.25 $/kWh = 0.10 $/h
    assert CATALOGUE.hourly("A100-80GB", "factory-berlin") == 1.0 + 0.1


def test_table_for_sql() -> None:
    assert CATALOGUE.table() == [
        ("A100-80GB", "eu-west-1", 3.5), ("A100-80GB", "factory-berlin", 1.1),
        ("H100-80GB", "eu-west-1", 7.0), ("A100-80GB", None, 3.5), ("H100-80GB", None, 7.0)]


def test_a_price_needs_a_figure() -> None:
    with pytest.raises(ValidationError, match="give usd_per_gpu_hour, or purchase_usd"):
        Price(card="H100-80GB", flavour="edge", purchase_usd=10)


def _usage(**kw: object) -> PartitionUsage:
    base = {"id": "x", "partition": "p", "site": "eu-west-1", "tier": "cloud", "node": "n",
            "gpu_uuid": "G", "card": "H100-80GB", "profile": "3g.40gb", "samples": 2,
            "window": Window(start=T0, end=T0 + timedelta(minutes=1)),
            "compute_share": 3 / 7, "memory_share": 0.5, "compute_use": 0.7,
            "compute_card_use": 0.7 * (3 / 7), "promised_compute": 3 / 7}
    return PartitionUsage.model_validate(base | kw)


def test_a_partition_costs_its_share_of_the_card() -> None:
    cost = cost_of(_usage(), 7.0)
    card = 7.0 * 60 / 3600  # 0.11667 $ for the card's minute
    assert cost.allocated == card * (3 / 7)  # 0.05 $
    assert cost.used == card * (0.7 * (3 / 7))  # 0.035 $
    assert cost.idle == card * (3 / 7) - card * (0.7 * (3 / 7))  # 0.015 $


def test_copied_replicas_split_the_device_use_once() -> None:
    replicas = [_usage(profile="timeslice", compute_share=1 / 3, compute_use=None,
                       compute_card_use=None, values_copied=True, device_compute_use=0.5)
                for _ in range(3)]
    costs = [cost_of(u, 3.5) for u in replicas]
    card = 3.5 * 60 / 3600
    assert [c.allocated for c in costs] == [card * (1 / 3)] * 3
    assert [c.used for c in costs] == [card * 0.5 * (1 / 3)] * 3
