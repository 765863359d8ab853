"""Read GPU partitions from NVML (nvidia-ml-py), where a GPU and its driver exist.

Kept small and flat so it can be checked on a GPU machine line by line: `open_nvml`
(import and init, or `NoGpu` with the reason), `read_samples` (every card; every MIG
instance of a card in MIG mode), and `mig_profile` (the catalogue name of an
instance from the slices and memory NVML reports). pynvml is imported only here and
only when called, so nothing needs a GPU to import Steward.

Under MIG, NVML has no utilisation counter per instance (nvmlDeviceGetUtilizationRates
is not supported there), so MIG samples carry memory only; busy time under MIG comes
from DCGM's profiling field 1001 (see `steward.gpu.dcgm`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from steward.gpu.inventory import CARDS, FULL, card_key
from steward.schema import GpuSample

MIB = 2**20


class NoGpu(Exception):
    """No NVIDIA GPU can be read here: no library, no driver, or no device."""


@dataclass(frozen=True)
class Identity:
    """Who the samples are from: what NVML cannot know."""

    site: str
    tier: str
    node: str
    model: str | None = None
    version: str | None = None
    team: str | None = None


def open_nvml() -> Any:
    """The initialised pynvml module; `NoGpu` with the reason when there is nothing to read."""
    try:
        import pynvml
    except ImportError as exc:
        raise NoGpu(f"nvidia-ml-py is not installed ({exc})") from None
    try:
        pynvml.nvmlInit()
        count = pynvml.nvmlDeviceGetCount()
    except pynvml.NVMLError as exc:
        raise NoGpu(f"no NVIDIA driver or GPU on this machine (NVML: {exc})") from None
    if count == 0:
        pynvml.nvmlShutdown()
        raise NoGpu("the NVIDIA driver reports no GPU on this machine")
    return pynvml


def read_samples(nvml: Any, who: Identity, now: datetime) -> list[GpuSample]:
    """One sample per whole card, or per MIG instance of a card in MIG mode."""
    out: list[GpuSample] = []
    for index in range(nvml.nvmlDeviceGetCount()):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        base = {"ts": now, "site": who.site, "tier": who.tier, "node": who.node,
                "gpu_uuid": nvml.nvmlDeviceGetUUID(handle), "gpu_index": index,
                "card": card_key(nvml.nvmlDeviceGetName(handle)), "model": who.model,
                "version": who.version, "team": who.team}
        if _mig_enabled(nvml, handle):
            out += [GpuSample.model_validate(base | s) for s in _mig_instances(nvml, handle,
                                                                               base["card"])]
        else:
            out.append(GpuSample.model_validate(base | _whole_card(nvml, handle)))
    return out


def _mig_enabled(nvml: Any, handle: Any) -> bool:
    try:
        current, _pending = nvml.nvmlDeviceGetMigMode(handle)
    except nvml.NVMLError:  # not a MIG-capable card
        return False
    return current == nvml.NVML_DEVICE_MIG_ENABLE


def _whole_card(nvml: Any, handle: Any) -> dict[str, Any]:
    mem = nvml.nvmlDeviceGetMemoryInfo(handle)
    return {"profile": FULL,
            "compute_active": nvml.nvmlDeviceGetUtilizationRates(handle).gpu / 100,
            "mem_used_bytes": int(mem.used), "mem_total_bytes": int(mem.total),
            "power_watts": nvml.nvmlDeviceGetPowerUsage(handle) / 1000}


def _mig_instances(nvml: Any, handle: Any, card: str) -> list[dict[str, Any]]:
    out = []
    for j in range(nvml.nvmlDeviceGetMaxMigDeviceCount(handle)):
        try:
            mig = nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, j)
        except nvml.NVMLError:  # an empty slot
            continue
        attrs = nvml.nvmlDeviceGetAttributes(mig)
        mem = nvml.nvmlDeviceGetMemoryInfo(mig)
        out.append({"profile": mig_profile(card, attrs.gpuInstanceSliceCount,
                                           attrs.memorySizeMB),
                    "instance_id": nvml.nvmlDeviceGetGpuInstanceId(mig),
                    "mem_used_bytes": int(mem.used), "mem_total_bytes": int(mem.total)})
    return out


def mig_profile(card: str, slices: int, memory_mb: int) -> str:
    """The catalogue profile with `slices` sevenths whose memory is nearest `memory_mb`
    (NVML reports usable memory, a little under the nominal size: 3g.40gb shows ~40192 MB)."""
    known = CARDS.get(card)
    if known is None:
        raise ValueError(f"unknown card {card!r}: cannot name its MIG profiles")
    fits = [p for p in known.profiles if p.compute_sevenths == slices]
    if not fits:
        raise ValueError(f"no {slices}g profile on a {card}")
    eighths = memory_mb * MIB * 8 / known.memory_bytes
    return min(fits, key=lambda p: abs(p.memory_eighths - eighths)).name
