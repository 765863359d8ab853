"""Fleet sightings: inference records in, per (model, version, site, node) buckets out,
keyed by model.

Inference records are keyed by model/site, while a promotion or rollback names many sites
of one model. Like `rollout-samples`, this stage repartitions: each closed bucket becomes
one `FleetSighting` per (node, version, tier) on the fleet sightings topic, keyed by model
and partitioned like the actions topic, which the `fleet` processor reads beside it.
A bucket carries what the inventory needs, not the latencies: record times, counts, the
newest hardware profile and edge-agent spool backlog. Records are counted once per id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from processors.buckets import ModelBuckets
from steward import topics as T
from steward.schema import InferenceRecord
from steward.schema.fleet import FleetSighting
from steward.schema.records import Hardware
from steward.stream import Emit


class SightingsSpec(BaseModel):
    """Bucket size: how far behind telemetry the inventory may be (plus the grace)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bucket_s: int = Field(10, ge=1)
    grace_s: float = Field(5.0, ge=0)


@dataclass
class Agg:
    first_ts: datetime
    last_ts: datetime
    records: int = 0
    inferences: float = 0.0
    errors: int = 0
    hardware: Hardware | None = None
    hardware_ts: datetime | None = None
    backlog: int | None = None
    backlog_ts: datetime | None = None
    seen: set[str] = field(default_factory=set)

    def add(self, r: InferenceRecord) -> None:
        if r.id in self.seen:
            return
        self.seen.add(r.id)
        self.first_ts, self.last_ts = min(self.first_ts, r.ts), max(self.last_ts, r.ts)
        self.records += 1
        self.inferences += 1.0 / r.sample_rate
        self.errors += r.error
        if r.hardware is not None and (self.hardware_ts is None or r.ts >= self.hardware_ts):
            self.hardware, self.hardware_ts = r.hardware, r.ts
        if r.agent_backlog is not None and (self.backlog_ts is None or r.ts >= self.backlog_ts):
            self.backlog, self.backlog_ts = r.agent_backlog, r.ts


    def add_many(self, rs: list[InferenceRecord]) -> None:
        """`add` of each record in order, with the per-record work in comprehensions."""
        seen, fresh = self.seen, []
        for r in rs:
            if r.id not in seen:
                seen.add(r.id)
                fresh.append(r)
        if not fresh:
            return
        times = [r.ts for r in fresh]
        self.first_ts, self.last_ts = min(self.first_ts, *times), max(self.last_ts, *times)
        self.records += len(fresh)
        for r in fresh:  # float sums in record order, as `add` makes them
            self.inferences += 1.0 / r.sample_rate
        self.errors += sum(r.error for r in fresh)
        for r in (r for r in fresh if r.hardware is not None):
            if self.hardware_ts is None or r.ts >= self.hardware_ts:
                self.hardware, self.hardware_ts = r.hardware, r.ts
        for r in (r for r in fresh if r.agent_backlog is not None):
            if self.backlog_ts is None or r.ts >= self.backlog_ts:
                self.backlog, self.backlog_ts = r.agent_backlog, r.ts


class FleetSightings(ModelBuckets):
    """The processor: inference records in; fleet sightings out."""

    name = "fleet-sightings"

    def __init__(self, spec: SightingsSpec | None = None) -> None:
        self.spec = spec or SightingsSpec()
        self.bucket_s, self.grace_s = self.spec.bucket_s, self.spec.grace_s

    def count(self, aggs: dict[tuple[str, str, str], Agg], record: InferenceRecord) -> None:
        slot = (record.node or "", record.version, record.tier)
        if slot not in aggs:
            aggs[slot] = Agg(record.ts, record.ts)
        aggs[slot].add(record)

    def count_run(self, aggs: dict[tuple[str, str, str], Agg],
                  records: list[InferenceRecord]) -> None:
        """`count` of each record, a slot at a time."""
        by_slot: dict[tuple[str, str, str], list[InferenceRecord]] = {}
        for r in records:
            by_slot.setdefault((r.node or "", r.version, r.tier), []).append(r)
        for slot, rs in by_slot.items():
            if slot not in aggs:
                aggs[slot] = Agg(rs[0].ts, rs[0].ts)
            aggs[slot].add_many(rs)

    def emit(self, model: str, site: str, start: datetime, end: datetime,
             aggs: dict[tuple[str, str, str], Agg]) -> list[Emit]:
        return [Emit(T.FLEET_SIGHTINGS, key=model, record=FleetSighting(
                    model=model, version=version, site=site, tier=tier, node=node or None,
                    start=start, end=end, first_ts=a.first_ts, last_ts=a.last_ts,
                    records=a.records, inferences=a.inferences, errors=a.errors,
                    hardware=a.hardware, agent_backlog=a.backlog))
                for (node, version, tier), a in sorted(aggs.items())]
