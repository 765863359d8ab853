"""GPU partitions: use against promise per window, breaches as alerts, copies flagged.

Windows are per card (site, node, UUID), so when one closes every partition of the
card is in hand: time-sliced replicas can be compared with each other (the DCGM
exporter copies the device's value to every pod; such values are flagged and the
device's use is carried once, never summed per pod) and the promises on one card
can be added up (more than the whole card promised = oversubscribed). Per partition
and window it emits a `PartitionUsage` (keyed by team) and, at most once per
(partition, window, kind), an alert: `starved` (busy at its ceiling while getting
less of the card than promised), `memory_pressure` (memory near full, or above the
promise) and, per card, `oversubscribed`. Event ids depend only on those facts, so
replays emit the same ids. A sample the catalogue refuses raises: the runner
dead-letters it with the reason.

Usage records carry the same: the window's allocated and used cost and the kinds of
alert it raised (`breaches`), so the rollout judge can weigh a version's measured cost
and partition health without joining alerts.

Alerts carry the money beside the health figures, so a policy can weigh an alert by
what is at stake without a second lookup: the window's allocated, used and idle cost
of the partition (of every partition on the card for `oversubscribed`), priced from
the price catalogue as gpu-budget and GET /cost price it (None where it has no price).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from processors.windows import Windows
from steward import topics as T
from steward.gpu.inventory import TIMESLICE, Slice, slice_of
from steward.gpu.prices import Catalogue, cost_of
from steward.gpu.promises import Promise, Promised, promised
from steward.schema import EventType, GpuSample, Window, make_event
from steward.schema.gpu import BreachKind, PartitionBreach, PartitionUsage
from steward.stream import Emit, Source

SOURCE = "/steward/processors/gpu-usage"
Share = Annotated[float, Field(gt=0, le=1)]
_EVENT = {"starved": EventType.GPU_STARVED, "oversubscribed": EventType.GPU_OVERSUBSCRIBED,
          "memory_pressure": EventType.GPU_MEMORY_PRESSURE}


class GpuSpec(BaseModel):
    """Windows, thresholds and promises of the GPU usage processor."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    window_s: int = Field(300, ge=1)
    grace_s: float = Field(30.0, ge=0)
    saturated: Share = 0.9
    """Mean busy share at or above which a partition uses all it has (it would take more)."""
    tolerance: Annotated[float, Field(ge=0, lt=1)] = 0.05
    """Starved when getting less than promised x (1 - tolerance) of the card."""
    memory_pressure: Share = 0.95
    """Peak memory use (of the partition's memory) at or above which it is under pressure."""
    promises: list[Promise] = Field(default_factory=list)


@dataclass
class PartAgg:
    """One partition's window so far; `seen` keeps sample ids so redelivery counts once."""

    first: GpuSample
    held: Slice
    promise: Promised
    seen: set[str] = field(default_factory=set)
    sums: dict[str, list[float]] = field(default_factory=dict)
    mem_used_max: int | None = None
    mem_total: int | None = None
    by_ts: dict[datetime, tuple[float | None, int | None]] = field(default_factory=dict)

    def add(self, s: GpuSample) -> None:
        if s.id in self.seen:
            return
        self.seen.add(s.id)
        for name in ("compute_active", "dram_active", "power_watts"):
            if (value := getattr(s, name)) is not None:
                self.sums.setdefault(name, []).append(value)
        if s.mem_used_bytes is not None:
            self.mem_used_max = max(s.mem_used_bytes, self.mem_used_max or 0)
        if s.mem_total_bytes is not None:
            self.mem_total = s.mem_total_bytes
        self.by_ts[s.ts] = (s.compute_active, s.mem_used_bytes)

    def mean(self, name: str) -> float | None:
        values = self.sums.get(name)
        return sum(values) / len(values) if values else None


@dataclass
class State:
    windows: Windows[dict[str, PartAgg]]


def partition_id(s: GpuSample) -> str:
    """Where a sample belongs: a MIG instance, a time-slice replica (by pod) or the card."""
    card = f"{s.node}/{s.gpu_uuid}"
    if s.instance_id is not None:
        return f"{card}/mig{s.instance_id}"
    if s.profile == TIMESLICE:
        return f"{card}/ts/{s.namespace or '-'}/{s.pod}"
    return card


class GpuUsage:
    """The processor: GPU samples in; usage records and partition alerts out."""

    name = "gpu-usage"
    inputs = (T.GPU,)

    def __init__(self, spec: GpuSpec, catalogue: Catalogue | None = None) -> None:
        self.spec = spec
        self.catalogue = catalogue or Catalogue()

    def initial_state(self) -> State:
        return State(Windows(self.spec.window_s, self.spec.grace_s))

    def hold(self, state: State) -> dict[str, int]:
        return state.windows.hold()

    def step(self, state: State, record: Any, now: datetime,
             src: Source) -> tuple[State, list[Emit]]:
        if not isinstance(record, GpuSample):
            return state, []
        held = slice_of(record)  # raises with the reason: the runner dead-letters it
        key = (record.site, record.node, record.gpu_uuid)
        parts = state.windows.add(key, record.ts, src, now, dict)
        if parts is None:
            return state, []
        pid = partition_id(record)
        if pid not in parts:
            parts[pid] = PartAgg(record, held, promised(record, held, self.spec.promises))
        parts[pid].add(record)
        return state, self._close(state.windows.close_by_watermark(key))

    def tick(self, state: State, now: datetime) -> tuple[State, list[Emit]]:
        return state, self._close(state.windows.close_quiet(now))

    def _close(self, closed: list[Any]) -> list[Emit]:
        emits: list[Emit] = []
        for _key, start, end, parts in closed:
            emits += judge_card(self.spec, Window(start=start, end=end), parts, self.catalogue)
        return emits


def judge_card(spec: GpuSpec, window: Window, parts: dict[str, PartAgg],
               catalogue: Catalogue | None = None) -> list[Emit]:
    """Usage records and alerts of one card's window (pure; see the module doc)."""
    copied = values_copied(parts)
    device = _device_use(parts) if copied else None
    catalogue = catalogue or Catalogue()
    emits: list[Emit] = []
    usages = [_usage(pid, agg, window, copied, device) for pid, agg in sorted(parts.items())]
    over = _oversubscribed(window, parts, money(catalogue, usages))
    for usage in usages:
        usd = money(catalogue, [usage])
        breaches = _breaches(spec, usage, usd)
        kinds = [b.kind for b in breaches] + [b.kind for b in over]
        usage = usage.model_copy(update={"allocated_usd": usd.get("allocated_usd"),
                                         "used_usd": usd.get("used_usd"), "breaches": kinds})
        emits.append(Emit(T.GPU_USAGE, record=usage, key=usage.team or "-"))
        emits += [_alert(b) for b in breaches]
    emits += [_alert(b) for b in over]
    return emits


def money(catalogue: Catalogue, usages: list[PartitionUsage]) -> dict[str, float | None]:
    """The window's dollars of these partitions (all on one card), as alert fields: the
    card's price and cost, and the partitions' allocated, used and idle cost (used and
    idle None when any partition's use is unknown). Empty when the card is not priced."""
    u = usages[0]
    price = catalogue.hourly(u.card, u.site)
    if price is None:
        return {}
    costs = [cost_of(x, price) for x in usages]
    allocated = sum(c.allocated for c in costs)
    uses = [c.used for c in costs if c.used is not None]
    used = sum(uses) if len(uses) == len(costs) else None
    hours = (u.window.end - u.window.start).total_seconds() / 3600
    return {"usd_per_gpu_hour": price, "card_usd": price * hours, "allocated_usd": allocated,
            "used_usd": used, "idle_usd": None if used is None else allocated - used}


def values_copied(parts: dict[str, PartAgg]) -> bool:
    """Whether a card's time-slice replicas only carry the device's value: two or more of
    them, and at every instant every replica reporting says the same."""
    replicas = [a for a in parts.values() if a.first.profile == TIMESLICE]
    if len(replicas) < 2 or len(replicas) != len(parts):
        return False
    instants = {ts for a in replicas for ts in a.by_ts}
    shared = False
    for ts in instants:
        values = {a.by_ts[ts] for a in replicas if ts in a.by_ts}
        if len(values) > 1:
            return False
        shared = shared or sum(ts in a.by_ts for a in replicas) > 1
    return shared


def _device_use(parts: dict[str, PartAgg]) -> float | None:
    """The device's busy share once (every replica carries the same series)."""
    return next(iter(sorted(parts.items())))[1].mean("compute_active")


def _usage(pid: str, agg: PartAgg, window: Window, copied: bool,
           device: float | None) -> PartitionUsage:
    s, share = agg.first, float(agg.held.compute)
    use = None if copied else agg.mean("compute_active")
    card_use = None if use is None else use * share
    mem_total = agg.mem_total or agg.held.memory_bytes
    mem_max = None if copied else agg.mem_used_max
    return PartitionUsage(
        id=f"{pid}@{window.start.isoformat()}", partition=pid, window=window, site=s.site,
        tier=s.tier, node=s.node, gpu_uuid=s.gpu_uuid, card=s.card, profile=s.profile,
        instance_id=s.instance_id, pod=s.pod, namespace=s.namespace, model=s.model,
        version=s.version, team=s.team, samples=len(agg.seen), compute_share=share,
        memory_share=float(agg.held.memory), compute_use=use, compute_card_use=card_use,
        dram_use=None if copied else agg.mean("dram_active"), mem_used_max_bytes=mem_max,
        mem_total_bytes=mem_total,
        mem_use_max=mem_max / mem_total if mem_max is not None and mem_total else None,
        power_watts_mean=agg.mean("power_watts"), promised_compute=agg.promise.compute,
        promised_memory_bytes=agg.promise.memory_bytes,
        latency_slo_ms=agg.promise.latency_slo_ms,
        compute_vs_promise=None if card_use is None else card_use / agg.promise.compute,
        values_copied=copied, device_compute_use=device,
    )


def _breaches(spec: GpuSpec, u: PartitionUsage,
              usd: dict[str, float | None]) -> list[PartitionBreach]:
    out = []
    if u.compute_use is not None and u.compute_card_use is not None \
            and u.compute_use >= spec.saturated \
            and u.compute_card_use < u.promised_compute * (1 - spec.tolerance):
        out.append(_breach(u, usd, "starved", u.compute_card_use, u.promised_compute,
                           f"busy {u.compute_use:.0%} of its {u.profile} slice, it got "
                           f"{u.compute_card_use:.3f} of the card; promised "
                           f"{u.promised_compute:.3f}"))
    if u.mem_use_max is not None and u.mem_use_max >= spec.memory_pressure:
        out.append(_breach(u, usd, "memory_pressure", u.mem_use_max, spec.memory_pressure,
                           f"memory peaked at {u.mem_use_max:.1%} of {u.mem_total_bytes} "
                           f"bytes (limit {spec.memory_pressure:.0%})"))
    elif u.mem_used_max_bytes is not None and u.promised_memory_bytes is not None \
            and u.mem_used_max_bytes > u.promised_memory_bytes:
        out.append(_breach(u, usd, "memory_pressure", u.mem_used_max_bytes,
                           u.promised_memory_bytes,
                           f"memory peaked at {u.mem_used_max_bytes} bytes, above the "
                           f"{u.promised_memory_bytes} promised"))
    return out


def _breach(u: PartitionUsage, usd: dict[str, float | None], kind: BreachKind,
            measured: float, threshold: float, reason: str) -> PartitionBreach:
    return PartitionBreach(
        kind=kind, partition=u.partition, site=u.site, node=u.node, gpu_uuid=u.gpu_uuid,
        card=u.card, profile=u.profile, model=u.model, version=u.version, team=u.team,
        window=u.window, reason=reason, measured=measured, threshold=threshold,
        compute_use=u.compute_use, compute_share=u.compute_share,
        promised_compute=u.promised_compute, compute_card_use=u.compute_card_use,
        mem_use_max=u.mem_use_max, **usd)


def _oversubscribed(window: Window, parts: dict[str, PartAgg],
                    usd: dict[str, float | None]) -> list[PartitionBreach]:
    """More than the whole card promised to the partitions seen on it in the window."""
    total = sum(a.promise.compute for a in parts.values())
    if total <= 1 + 1e-9:
        return []
    s = next(iter(parts.values())).first
    return [PartitionBreach(
        kind="oversubscribed", partition=f"{s.node}/{s.gpu_uuid}", site=s.site, node=s.node,
        gpu_uuid=s.gpu_uuid, card=s.card, window=window, measured=total, threshold=1.0,
        reason=f"{len(parts)} partitions are promised {total:.3f} of one card",
        partitions=sorted(parts), **usd)]


def _alert(b: PartitionBreach) -> Emit:
    event = make_event(_EVENT[b.kind], source=SOURCE, subject=b.partition, data=b,
                       key=b.model or b.partition, time=b.window.end,
                       facts=(b.kind, b.partition, b.window.start.isoformat()))
    return Emit(T.ALERTS, event)
