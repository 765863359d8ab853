"""Rollout samples: inference records in, per (model, version, site) buckets out, keyed
by model.

Inference records are keyed by model/site, so one model's sites spread over partitions,
while a rollout spans sites (an edge fleet is judged across its sites, and a rollback
must name all of them). Like drift verdicts before the retraining trigger, this stage
repartitions: every closed bucket becomes one `VersionSamples` record on the rollout
samples topic, keyed by model, which the `rollout` processor reads beside the
declarations. A bucket keeps the raw latencies (up to a cap), because a rank test needs
them and a histogram cannot give them back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from processors.buckets import ModelBuckets
from steward import topics as T
from steward.schema import InferenceRecord
from steward.schema.rollout import VersionSamples
from steward.stream import Emit


class SamplesSpec(BaseModel):
    """Bucket size and the bound on what one bucket carries."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bucket_s: int = Field(10, ge=1)
    """Rollout analysis intervals should be multiples of this."""
    grace_s: float = Field(5.0, ge=0)
    max_latencies: int = Field(2000, ge=1)
    models: list[str] | None = None
    """Only these models (None: every model; a rollout can be declared for any)."""


@dataclass
class Agg:
    records: int = 0
    inferences: float = 0.0
    latency_ms: list[float] = field(default_factory=list)
    truncated: int = 0
    errors: int = 0
    labelled: int = 0
    correct: int = 0


class RolloutSamples(ModelBuckets):
    name = "rollout-samples"

    def __init__(self, spec: SamplesSpec) -> None:
        self.spec = spec
        self.bucket_s, self.grace_s = spec.bucket_s, spec.grace_s

    def wants(self, record: InferenceRecord) -> bool:
        return self.spec.models is None or record.model in self.spec.models

    def count(self, aggs: dict[str, Agg], record: InferenceRecord) -> None:
        agg = aggs.setdefault(record.version, Agg())
        agg.records += 1
        agg.inferences += 1.0 / record.sample_rate
        if len(agg.latency_ms) < self.spec.max_latencies:
            agg.latency_ms.append(record.latency_ms)
        else:
            agg.truncated += 1
        agg.errors += record.error
        if record.label is not None:
            agg.labelled += 1
            agg.correct += record.label == record.prediction

    def count_run(self, aggs: dict[str, Agg], records: list[InferenceRecord]) -> None:
        """`count` of each record, a version at a time (the same sums, in order)."""
        by_version: dict[str, list[InferenceRecord]] = {}
        for r in records:
            by_version.setdefault(r.version, []).append(r)
        for version, rs in by_version.items():
            agg = aggs.setdefault(version, Agg())
            agg.records += len(rs)
            for r in rs:  # one at a time: float sums in record order, as `count` adds them
                agg.inferences += 1.0 / r.sample_rate
            room = max(0, self.spec.max_latencies - len(agg.latency_ms))
            agg.latency_ms.extend(r.latency_ms for r in rs[:room])
            agg.truncated += max(0, len(rs) - room)
            agg.errors += sum(r.error for r in rs)
            labelled = [r for r in rs if r.label is not None]
            agg.labelled += len(labelled)
            agg.correct += sum(r.label == r.prediction for r in labelled)

    def emit(self, model: str, site: str, start: datetime, end: datetime,
             aggs: dict[str, Agg]) -> list[Emit]:
        return [Emit(T.ROLLOUT_SAMPLES, key=model, record=VersionSamples(
                    model=model, version=version, site=site, start=start, end=end,
                    records=a.records, inferences=a.inferences, latency_ms=a.latency_ms,
                    truncated=a.truncated, errors=a.errors, labelled=a.labelled,
                    correct=a.correct))
                for version, a in sorted(aggs.items())]
