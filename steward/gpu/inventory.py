"""Which partitions a card can have, and what each one is: the MIG profile catalogue.

MIG hands out compute in sevenths of a card and memory in eighths, so a profile's
share of the card is exact (`compute_sevenths / 7`, `memory_eighths / 8`) and usage
on a 1g slice is comparable with usage on a 3g slice once divided by it. The table
follows NVIDIA's mig-parted defaults. A card that is not partitioned is `full` (the
whole card); a card shared by time-slicing is `timeslice`, each replica promised
`1 / replicas` of it. Card names as drivers report them ("NVIDIA H100 80GB HBM3")
are normalised to catalogue keys ("H100-80GB") by `card_key`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from steward.schema import GpuSample

GIB = 2**30
FULL = "full"
TIMESLICE = "timeslice"
ABSURD_POWER_FACTOR = 2.0
"""A power reading above this multiple of the card's TDP is a broken sensor, not a load."""
MEMORY_TOLERANCE = 1.05
"""Memory reported above the profile's nominal size by more than this is refused."""


@dataclass(frozen=True)
class Profile:
    """One MIG profile of one card: its share of compute and memory, and how many fit."""

    name: str
    compute_sevenths: int
    memory_eighths: int
    max_count: int

    @property
    def compute(self) -> Fraction:
        return Fraction(self.compute_sevenths, 7)

    @property
    def memory(self) -> Fraction:
        return Fraction(self.memory_eighths, 8)


@dataclass(frozen=True)
class Card:
    """A card type: nominal memory, TDP and the MIG profiles it supports."""

    key: str
    memory_gib: int
    tdp_watts: float
    profiles: tuple[Profile, ...]

    @property
    def memory_bytes(self) -> int:
        return self.memory_gib * GIB

    def profile(self, name: str) -> Profile | None:
        return next((p for p in self.profiles if p.name == name), None)


def _mig(eighth: int, quarter: int, half: int, whole: int) -> tuple[Profile, ...]:
    """The six standard profiles from the card's memory sizes in GB (an eighth, a quarter,
    half, all): the shapes are the same on every MIG card, only the sizes differ."""
    return (
        Profile(f"1g.{eighth}gb", 1, 1, 7),
        Profile(f"1g.{quarter}gb", 1, 2, 4),
        Profile(f"2g.{quarter}gb", 2, 2, 3),
        Profile(f"3g.{half}gb", 3, 4, 2),
        Profile(f"4g.{half}gb", 4, 4, 1),
        Profile(f"7g.{whole}gb", 7, 8, 1),
    )


CARDS: dict[str, Card] = {c.key: c for c in (
    Card("H100-80GB", 80, 700.0, _mig(10, 20, 40, 80)),
    Card("A100-80GB", 80, 400.0, _mig(10, 20, 40, 80)),
    Card("A100-40GB", 40, 400.0, _mig(5, 10, 20, 40)),
    Card("H100-NVL", 94, 400.0, _mig(12, 24, 47, 94)),
    Card("H200-141GB", 141, 700.0, _mig(18, 35, 71, 141)),
)}

_CARD_NAME = re.compile(r"\b([AHB]\d{2,3})\b.*?(?:(\d{2,3})\s*GB|\b(NVL)\b)", re.IGNORECASE)


def card_key(model_name: str) -> str:
    """The catalogue key of a driver's card name, or the name itself when unknown.

    "NVIDIA H100 80GB HBM3" -> "H100-80GB"; "NVIDIA A100-SXM4-40GB" -> "A100-40GB";
    "NVIDIA H100 NVL" -> "H100-NVL"; "NVIDIA H200" -> "H200-141GB" (one size exists).
    """
    name = model_name.strip()
    if name in CARDS:
        return name
    upper = name.upper().replace("-", " ")
    if re.search(r"\bH200\b", upper):
        return "H200-141GB"
    m = _CARD_NAME.search(upper)
    if m:
        family, gb, nvl = m.group(1), m.group(2), m.group(3)
        key = f"{family}-NVL" if nvl else f"{family}-{gb}GB"
        if key in CARDS:
            return key
    return name


@dataclass(frozen=True)
class Slice:
    """A partition's share of its card, as the catalogue (or the replica count) says."""

    compute: Fraction
    memory: Fraction
    memory_bytes: int | None
    """Nominal memory of the slice; None for cards not in the catalogue."""


def slice_of(sample: GpuSample) -> Slice:
    """The share of the card a sample's partition holds; raises `ValueError` with the
    reason when the sample names a profile the card cannot have or values no card gives."""
    card = CARDS.get(sample.card)
    if sample.profile == FULL:
        share = Fraction(1)
    elif sample.profile == TIMESLICE:
        if not sample.pod:
            raise ValueError("time-sliced sample without a pod: replicas are told apart by pod")
        share = Fraction(1, sample.replicas or 1)
    else:
        return _mig_slice(sample, card)
    mem = card.memory_bytes if card else None
    _check_values(sample, card, mem)
    return Slice(share, share, mem)


def _mig_slice(sample: GpuSample, card: Card | None) -> Slice:
    if card is None:
        raise ValueError(f"unknown card {sample.card!r} for MIG profile {sample.profile!r}; "
                         f"known cards: {', '.join(sorted(CARDS))}")
    profile = card.profile(sample.profile)
    if profile is None:
        known = ", ".join(p.name for p in card.profiles)
        raise ValueError(f"unknown MIG profile {sample.profile!r} for {card.key}; "
                         f"known: {known}, {FULL}, {TIMESLICE}")
    if sample.instance_id is None:
        raise ValueError(f"MIG profile {profile.name} without a GPU instance id (GPU_I_ID)")
    mem = card.memory_bytes * profile.memory_eighths // 8
    _check_values(sample, card, mem)
    return Slice(profile.compute, profile.memory, mem)


def _check_values(sample: GpuSample, card: Card | None, slice_bytes: int | None) -> None:
    """Refuse readings no such partition can give (the schema already refused negatives)."""
    if slice_bytes is not None:
        limit = slice_bytes * MEMORY_TOLERANCE
        for name in ("mem_used_bytes", "mem_total_bytes"):
            value = getattr(sample, name)
            if value is not None and value > limit:
                raise ValueError(f"{name} {value} exceeds the {slice_bytes}-byte "
                                 f"{sample.profile} partition of a {sample.card}")
    if card is not None and sample.power_watts is not None \
            and sample.power_watts > card.tdp_watts * ABSURD_POWER_FACTOR:
        raise ValueError(f"power {sample.power_watts} W is absurd for a {card.key} "
                         f"(TDP {card.tdp_watts} W)")
