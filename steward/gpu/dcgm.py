"""DCGM exporter series -> `GpuSample`s: field ids, names old and new, units, labels.

DCGM names fields by number; the exporter names series by the field's symbol, and
DCGM 4.x renamed symbols with unit suffixes and changed their units (MiB -> bytes,
% -> ratio). So the map is keyed on the numeric field id, each id lists every
spelling with the unit that spelling carries, and values are normalised to one
unit per field (ratios 0..1, bytes, watts) before they become a record.

Series are grouped into one sample per partition and instant: the same card
(`UUID`), GPU instance (`GPU_I_ID`), pod/namespace/container and timestamp. A
group that cannot become a valid sample (a label missing, a value negative,
over 100 %, NaN, a profile the card cannot have) is rejected alone, with a reason.
Series of fields Steward does not use (clocks, temperatures), and device-wide series
of a MIG card (power: no GPU instance owns it), are counted as ignored.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from steward.codec import validation_reason
from steward.gpu.inventory import FULL, TIMESLICE, card_key, slice_of
from steward.schema import GpuSample

Unit = Literal["ratio", "percent", "MiB", "bytes", "W"]
MIB = 2**20


@dataclass(frozen=True)
class FieldSpec:
    """One DCGM field: its id, the sample attribute it fills, and each name with its unit."""

    id: int
    target: str
    names: tuple[tuple[str, Unit], ...]


FIELDS: dict[int, FieldSpec] = {f.id: f for f in (
    FieldSpec(1001, "compute_active", (("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "ratio"),
                                       ("DCGM_FI_PROF_GR_ENGINE_UTIL_RATIO", "ratio"))),
    FieldSpec(1005, "dram_active", (("DCGM_FI_PROF_DRAM_ACTIVE", "ratio"),
                                    ("DCGM_FI_PROF_DRAM_UTIL_RATIO", "ratio"))),
    FieldSpec(203, "gpu_util", (("DCGM_FI_DEV_GPU_UTIL", "percent"),
                                ("DCGM_FI_DEV_GPU_UTIL_RATIO", "ratio"))),
    FieldSpec(250, "mem_total", (("DCGM_FI_DEV_FB_TOTAL", "MiB"),
                                 ("DCGM_FI_DEV_FB_TOTAL_BYTES", "bytes"))),
    FieldSpec(251, "mem_free", (("DCGM_FI_DEV_FB_FREE", "MiB"),
                                ("DCGM_FI_DEV_FB_FREE_BYTES", "bytes"))),
    FieldSpec(252, "mem_used", (("DCGM_FI_DEV_FB_USED", "MiB"),
                                ("DCGM_FI_DEV_FB_USED_BYTES", "bytes"))),
    FieldSpec(155, "power_watts", (("DCGM_FI_DEV_POWER_USAGE", "W"),
                                   ("DCGM_FI_DEV_BOARD_POWER_WATTS", "W"))),
)}
"""The alias map, keyed on DCGM's numeric field id."""

BY_NAME: dict[str, tuple[FieldSpec, Unit]] = {
    name: (spec, unit) for spec in FIELDS.values() for name, unit in spec.names}

LABELS = {  # sample field: labels that may carry it, first found wins
    "gpu_uuid": ("UUID", "uuid", "gpu_uuid"),
    "node": ("hostname", "Hostname", "host.name", "steward.node", "node"),
    "card": ("modelName", "gpu.model", "card"),
    "profile": ("GPU_I_PROFILE",),
    "instance_id": ("GPU_I_ID",),
    "gpu_index": ("gpu",),
    "pod": ("pod", "exported_pod", "k8s.pod.name"),
    "namespace": ("namespace", "exported_namespace", "k8s.namespace.name"),
    "container": ("container", "exported_container", "k8s.container.name"),
    "site": ("site", "steward.site", "cloud.region"),
    "tier": ("tier", "steward.tier"),
    "model": ("model", "steward.model"),
    "version": ("version", "steward.model.version"),
    "team": ("team", "steward.team"),
    "replicas": ("replicas", "steward.gpu.replicas"),
}
_PARTITION_LABELS = ("gpu_uuid", "instance_id", "pod", "namespace", "container")


@dataclass(frozen=True)
class Series:
    """One value of one DCGM field, with its labels: what a scrape line or an OTLP
    data point says."""

    name: str
    labels: dict[str, str]
    value: float
    ts: datetime | None = None


@dataclass
class Parsed:
    """Samples that validated, groups rejected with their reason, series ignored."""

    samples: list[GpuSample] = field(default_factory=list)
    rejected: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    ignored: int = 0


def is_dcgm(name: str) -> bool:
    """Whether a metric name is a DCGM field Steward reads."""
    return name in BY_NAME


def normalise(name: str, value: float) -> tuple[str, float]:
    """(sample attribute, value in Steward's unit) of one series; `ValueError` when the
    value cannot be a reading of that field."""
    spec, unit = BY_NAME[name]
    if math.isnan(value) or math.isinf(value) or value < 0:
        raise ValueError(f"{name} = {value}: not a reading (negative, NaN or infinite)")
    if unit == "ratio" and value > 1:
        raise ValueError(f"{name} = {value}: a ratio above 1")
    if unit == "percent":
        if value > 100:
            raise ValueError(f"{name} = {value}: a percentage above 100")
        value = value / 100
    if unit == "MiB":
        value = value * MIB
    return spec.target, value


def parse_text(text: str) -> list[Series]:
    """Series of the DCGM fields in a Prometheus text exposition (what the exporter serves);
    other metrics are skipped. `ValueError` when the text is not an exposition."""
    out = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            ts = datetime.fromtimestamp(s.timestamp, UTC) if s.timestamp is not None else None
            out.append(Series(s.name, dict(s.labels), float(s.value), ts))
    return out


def to_samples(series: Iterable[Series], now: datetime,
               defaults: dict[str, str] | None = None) -> Parsed:
    """Group series into one sample per partition and instant, validated alone.

    `defaults` fill labels the series lack (a scrape's site, tier, node). Series with no
    timestamp take `now`. Pods on a card with no GPU instance are time-slice replicas
    when more than one shares the card at one instant (the exporter copies the device's
    value to each): their count is the replica count unless a `replicas` label says.
    """
    result = Parsed()
    groups: dict[tuple[Any, ...], list[Series]] = defaultdict(list)
    for s in series:
        if not is_dcgm(s.name):
            result.ignored += 1
            continue
        labels = {**(defaults or {}), **s.labels}
        key = tuple(_label(labels, f) for f in _PARTITION_LABELS)
        groups[(*key, s.ts or now)].append(Series(s.name, labels, s.value, s.ts or now))
    pods = _pods_per_card(groups)
    mig = {(uuid, ts) for uuid, instance, *_, ts in groups if instance is not None}
    for (uuid, instance, pod, *_, ts), members in groups.items():
        if instance is None and pod is None and (uuid, ts) in mig:
            result.ignored += len(members)  # device-wide fields of a MIG card: no partition's
            continue
        try:
            result.samples.append(_sample(members, ts, pods))
        except (ValueError, ValidationError) as exc:
            reason = validation_reason(exc) if isinstance(exc, ValidationError) else str(exc)
            result.rejected.append((reason, {"series": [
                {"name": m.name, "labels": m.labels, "value": m.value} for m in members],
                "ts": ts.isoformat()}))
    return result


def _label(labels: dict[str, str], name: str) -> str | None:
    return next((labels[k] for k in LABELS[name] if labels.get(k) not in (None, "")), None)


def _pods_per_card(groups: dict[tuple[Any, ...], list[Series]]) -> dict[tuple[Any, ...], int]:
    """Distinct pods on each (card, instant) outside any GPU instance."""
    pods: dict[tuple[Any, ...], set[Any]] = defaultdict(set)
    for uuid, instance, pod, namespace, _container, ts in groups:
        if instance is None and pod is not None:
            pods[(uuid, ts)].add((namespace, pod))
    return {k: len(v) for k, v in pods.items()}


def _sample(members: list[Series], ts: datetime, pods: dict[tuple[Any, ...], int]) -> GpuSample:
    labels = members[0].labels
    fields: dict[str, Any] = {f: _label(labels, f) for f in LABELS}
    missing = [f for f in ("gpu_uuid", "node", "site") if fields[f] is None]
    if missing:
        names = "; ".join(f"{f} (label {' or '.join(LABELS[f][:2])})" for f in missing)
        raise ValueError(f"missing label(s): {names}")
    fields["ts"], fields["tier"] = ts, fields["tier"] or "cloud"
    fields["card"] = card_key(fields["card"] or "")
    sharers = pods.get((fields["gpu_uuid"], ts), 0)
    if fields["profile"] is None:
        timesliced = fields["instance_id"] is None and (sharers > 1 or fields["replicas"])
        fields["profile"] = TIMESLICE if timesliced else FULL
        if timesliced and fields["replicas"] is None:
            fields["replicas"] = sharers
    values = dict(normalise(m.name, m.value) for m in members)
    sample = GpuSample.model_validate({k: v for k, v in fields.items() if v is not None}
                                      | _readings(values))
    slice_of(sample)
    return sample


def _readings(values: dict[str, float]) -> dict[str, Any]:
    """Sample fields from normalised field values: busy share (engine activity, else the
    device's utilisation), memory in bytes (total = used + free when no total is sent)."""
    out: dict[str, Any] = {}
    busy = values.get("compute_active", values.get("gpu_util"))
    if busy is not None:
        out["compute_active"] = busy
    for src, dst in (("dram_active", "dram_active"), ("power_watts", "power_watts")):
        if src in values:
            out[dst] = values[src]
    used, free, total = (values.get(k) for k in ("mem_used", "mem_free", "mem_total"))
    if used is not None:
        out["mem_used_bytes"] = round(used)
    if total is None and used is not None and free is not None:
        total = used + free
    if total is not None:
        out["mem_total_bytes"] = round(total)
    return out
