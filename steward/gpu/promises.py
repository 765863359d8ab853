"""What each partition was promised, from config: compute, memory, an optional latency SLO.

A promise matches samples by any of node, card UUID, GPU instance, pod, model and
team (unset: any); the first matching promise in the list applies, so put specific
ones first. With no promise, or a promise that leaves a figure unset, a partition is
promised what its slice holds: 3/7 of the card for a 3g instance, 1/N for one of N
time-slice replicas, the slice's memory.

The latency SLO is carried onto usage records but not judged: GPU samples hold no
latency and latency records name no partition (docs/architecture.md says what judging
it would need).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from steward.gpu.inventory import Slice
from steward.schema import GpuSample

_SELECTORS = ("node", "gpu_uuid", "instance_id", "pod", "model", "team")


class Promise(BaseModel):
    """One promise and the partitions it is for."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    node: str | None = None
    gpu_uuid: str | None = None
    instance_id: int | None = None
    pod: str | None = None
    model: str | None = None
    team: str | None = None
    compute: Annotated[float, Field(gt=0, le=1)] | None = None
    """Share of the card's compute promised (None: the slice's share)."""
    memory_bytes: Annotated[int, Field(gt=0)] | None = None
    """Memory promised (None: the slice's memory)."""
    latency_slo_ms: Annotated[float, Field(gt=0)] | None = None
    """Carried onto usage records for whoever reads them; not judged (see the module doc)."""

    def matches(self, sample: GpuSample) -> bool:
        return all(getattr(self, k) is None or getattr(self, k) == getattr(sample, k)
                   for k in _SELECTORS)


@dataclass(frozen=True)
class Promised:
    """The figures a partition is held to."""

    compute: float
    memory_bytes: int | None
    latency_slo_ms: float | None = None


def promised(sample: GpuSample, held: Slice, promises: list[Promise]) -> Promised:
    """What `sample`'s partition was promised: the first matching promise, the slice's
    own share for whatever it leaves unset."""
    p = next((p for p in promises if p.matches(sample)), None) or Promise()
    return Promised(compute=p.compute if p.compute is not None else float(held.compute),
                    memory_bytes=p.memory_bytes or held.memory_bytes,
                    latency_slo_ms=p.latency_slo_ms)
