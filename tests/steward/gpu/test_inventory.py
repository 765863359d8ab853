"""The MIG catalogue: shapes, shares and the checks that refuse impossible samples."""

from __future__ import annotations

from fractions import Fraction

import pytest

from steward.gpu.inventory import CARDS, card_key, slice_of
from steward.schema import GpuSample
from tests.gpu_support import T0

GIB = 2**30


def _sample(**kw: object) -> GpuSample:
    base = {"ts": T0, "site": "eu-west-1", "tier": "cloud", "node": "n1", "gpu_uuid": "GPU-1"}
    return GpuSample.model_validate(base | kw)


@pytest.mark.parametrize("card", ["H100-80GB", "A100-80GB", "A100-40GB", "H100-NVL",
                                  "H200-141GB"])
def test_every_card_has_the_six_standard_shapes(card: str) -> None:
    shapes = [(p.compute_sevenths, p.memory_eighths, p.max_count) for p in CARDS[card].profiles]
    assert shapes == [(1, 1, 7), (1, 2, 4), (2, 2, 3), (3, 4, 2), (4, 4, 1), (7, 8, 1)]


def test_profile_names_per_card() -> None:
    assert [p.name for p in CARDS["H100-80GB"].profiles] == \
        ["1g.10gb", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"]
    assert CARDS["A100-40GB"].profiles[0].name == "1g.5gb"
    assert CARDS["H100-NVL"].profiles[0].name == "1g.12gb"
    assert [p.name for p in CARDS["H200-141GB"].profiles][::5] == ["1g.18gb", "7g.141gb"]


@pytest.mark.parametrize(("name", "key"), [
    ("NVIDIA H100 80GB HBM3", "H100-80GB"), ("NVIDIA A100-SXM4-80GB", "A100-80GB"),
    ("NVIDIA A100-PCIE-40GB", "A100-40GB"), ("NVIDIA H100 NVL", "H100-NVL"),
    ("NVIDIA H200", "H200-141GB"), ("H100-80GB", "H100-80GB"),
    ("Tesla T4", "Tesla T4"),
])
def test_card_key(name: str, key: str) -> None:
    assert card_key(name) == key


def test_mig_slice_shares_are_sevenths_and_eighths() -> None:
    s = slice_of(_sample(card="H100-80GB", profile="3g.40gb", instance_id=1))
    assert (s.compute, s.memory, s.memory_bytes) == (Fraction(3, 7), Fraction(1, 2), 40 * GIB)
    s = slice_of(_sample(card="H100-80GB", profile="1g.20gb", instance_id=3))
    assert (s.compute, s.memory, s.memory_bytes) == (Fraction(1, 7), Fraction(1, 4), 20 * GIB)


def test_timeslice_replica_is_promised_one_over_replicas() -> None:
    s = slice_of(_sample(card="A100-80GB", profile="timeslice", pod="p", replicas=4))
    assert (s.compute, s.memory_bytes) == (Fraction(1, 4), 80 * GIB)
    assert slice_of(_sample(card="Tesla T4")).compute == 1


@pytest.mark.parametrize(("kw", "why"), [
    ({"card": "H100-80GB", "profile": "5g.50gb", "instance_id": 1},
     "unknown MIG profile '5g.50gb' for H100-80GB"),
    ({"card": "A100-40GB", "profile": "1g.10gb", "instance_id": 1, "mem_used_bytes": 11 * GIB},
     "mem_used_bytes 11811160064 exceeds the 10737418240-byte 1g.10gb partition"),
    ({"card": "Tesla T4", "profile": "1g.5gb", "instance_id": 1}, "unknown card 'Tesla T4'"),
    ({"card": "H100-80GB", "profile": "3g.40gb"}, "without a GPU instance id"),
    ({"card": "H100-80GB", "profile": "timeslice", "replicas": 2}, "without a pod"),
    ({"card": "H100-80GB", "power_watts": 1500.0}, "power 1500.0 W is absurd"),
])
def test_impossible_samples_are_refused_with_the_reason(kw: dict, why: str) -> None:
    with pytest.raises(ValueError, match=why.replace("(", r"\(").replace(")", r"\)")):
        slice_of(_sample(**kw))


def test_used_above_total_is_refused_by_the_schema() -> None:
    with pytest.raises(ValueError, match="mem_used_bytes 5 exceeds mem_total_bytes 4"):
        _sample(mem_used_bytes=5, mem_total_bytes=4)
