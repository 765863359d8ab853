"""Records that enter Steward: what edge and cloud nodes send, after the collector.

Every model is frozen and versioned (`schema` names family and version). Names
that become Kafka keys (model, site) may not contain '/', the key separator.
A record's `id` is the dedup key downstream: clients should send one; when they
do not, it is derived from the record's content, so a retried request yields
the same id.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@+-]{0,127}$"
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
"""An identifier: model, version, site, node: letters, digits and `_.:@+-`; no '/'."""

Tier = Literal["edge", "cloud"]
Scalar = float | int | str | bool | None
Features = Annotated[dict[Annotated[str, StringConstraints(max_length=128)], Scalar],
                     Field(max_length=1024)]


class Frozen(BaseModel):
    """Base of every record and event payload: immutable, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


RecordId = Annotated[str, StringConstraints(max_length=128)] | None
"""A record's id as sent: absent, null or empty means "derive it from the content"."""


class _Identified(Frozen):
    """Records with an id: fill it from content when the sender gave none.

    Filled after validation (not in a `before` validator, which would make pydantic build
    a Python dict of every record it parses from JSON: a third of a batch's decode time in
    every consumer), from the validated record: the same content gives the same id."""

    id_prefix: ClassVar[str] = "rec"

    def model_post_init(self, context: Any, /) -> None:
        if not self.id:  # type: ignore[attr-defined] - each subclass declares `id: RecordId`
            body = type(self).__pydantic_serializer__.to_json(self, by_alias=True,
                                                               exclude={"id"})
            digest = hashlib.sha256(body).hexdigest()[:32]  # fields in declared order: stable
            object.__setattr__(self, "id", f"{self.id_prefix}-{digest}")


class Hardware(Frozen):
    """What a node serves on, as far as its telemetry says (every field optional)."""

    accelerator: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    """Card or device type, as the price catalogue names it (e.g. 'A100-80GB')."""
    memory_bytes: Annotated[int, Field(ge=0)] | None = None
    runtime: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    """Serving runtime, e.g. 'onnxruntime-1.18', 'tensorrt-10'."""
    quantisation: Annotated[str, StringConstraints(min_length=1, max_length=32)] | None = None


class InferenceRecord(_Identified):
    """One inference served by a model at a site (edge or cloud)."""

    schema_: Literal["steward.inference.v1"] = Field("steward.inference.v1", alias="schema")
    id: RecordId = None
    model: Name
    version: Name
    site: Name
    tier: Tier
    node: Name | None = None
    ts: AwareDatetime
    latency_ms: Annotated[float, Field(ge=0, le=3_600_000)]
    features: Features = Field(default_factory=dict)
    prediction: Scalar = None
    label: Scalar = None
    error: bool = False
    sample_rate: Annotated[float, Field(gt=0, le=1)] = 1.0
    profiled: bool = False
    """Its features are also in a feature profile of its window (an edge agent sending
    both): drift judges use the profile and skip this record's features."""
    """Share of inferences this record stands for (1.0 = unsampled); keeps counts unbiased."""
    hardware: Hardware | None = None
    """The node's hardware profile (optional, added in v1 without a version bump: absent
    means unknown); the fleet inventory shows the latest one reported."""
    spillover_from: Name | None = None
    """A cloud record only: the edge site whose request this was, served in the cloud
    because the edge could not (overloaded, model missing, offline). Counted as
    spillover in the edge/cloud split."""
    agent_backlog: Annotated[int, Field(ge=0)] | None = None
    """Set by the edge agent: records waiting in its spool when this one was spooled."""

    model_config = ConfigDict(populate_by_name=True)
    id_prefix = "inf"

    @model_validator(mode="after")
    def _spillover_is_cloud(self) -> InferenceRecord:
        if self.spillover_from is not None and self.tier != "cloud":
            raise ValueError("spillover_from is for cloud records (the edge site that "
                             "spilled the request over)")
        return self


class Histogram(Frozen):
    """An explicit-bucket histogram as OTLP carries it (bounds are upper bucket edges)."""

    bounds: list[float]
    counts: list[Annotated[int, Field(ge=0)]]
    count: Annotated[int, Field(ge=0)]
    sum: float | None = None
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _shape(self) -> Histogram:
        if len(self.counts) != len(self.bounds) + 1:
            raise ValueError(
                f"histogram has {len(self.counts)} bucket counts for {len(self.bounds)} "
                f"bounds; OTLP requires len(bounds) + 1"
            )
        if list(self.bounds) != sorted(self.bounds):
            raise ValueError("histogram bounds must be increasing")
        return self


class MetricPoint(_Identified):
    """One OTLP metric data point, with the model/site identity resolved from attributes."""

    schema_: Literal["steward.metric.v1"] = Field("steward.metric.v1", alias="schema")
    id: RecordId = None
    name: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    kind: Literal["gauge", "sum", "histogram", "exponential_histogram", "summary"]
    unit: str = ""
    ts: AwareDatetime
    start_ts: AwareDatetime | None = None
    temporality: Literal["delta", "cumulative"] | None = None
    model: Name
    version: Name
    site: Name
    tier: Tier
    node: Name | None = None
    service: str | None = None
    attributes: dict[str, Scalar] = Field(default_factory=dict)
    value: float | None = None
    histogram: Histogram | None = None

    model_config = ConfigDict(populate_by_name=True)
    id_prefix = "met"


class GpuSample(_Identified):
    """One sample of a GPU partition (a MIG instance, a time-slice replica or a whole card)."""

    schema_: Literal["steward.gpu.v1"] = Field("steward.gpu.v1", alias="schema")
    id: RecordId = None
    ts: AwareDatetime
    site: Name
    tier: Tier
    node: Name
    gpu_uuid: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    card: Annotated[str, StringConstraints(max_length=128)] = ""
    profile: Annotated[str, StringConstraints(max_length=64)] = "full"
    """MIG profile (e.g. '3g.40gb'), 'timeslice' or 'full'."""
    instance_id: Annotated[int, Field(ge=0, le=64)] | None = None
    """MIG GPU instance id (DCGM's GPU_I_ID)."""
    gpu_index: Annotated[int, Field(ge=0, le=255)] | None = None
    pod: Annotated[str, StringConstraints(min_length=1, max_length=253)] | None = None
    namespace: Annotated[str, StringConstraints(min_length=1, max_length=253)] | None = None
    container: Annotated[str, StringConstraints(min_length=1, max_length=253)] | None = None
    replicas: Annotated[int, Field(ge=1, le=64)] | None = None
    """Time-slice replicas sharing the card (profile 'timeslice'); each is promised 1/replicas."""
    model: Name | None = None
    version: Name | None = None
    team: Name | None = None
    compute_active: Annotated[float, Field(ge=0, le=1)] | None = None
    """Share of time the partition's engine was busy (DCGM 1001), of the partition, not the card."""
    dram_active: Annotated[float, Field(ge=0, le=1)] | None = None
    mem_used_bytes: Annotated[int, Field(ge=0)] | None = None
    mem_total_bytes: Annotated[int, Field(ge=0)] | None = None
    power_watts: Annotated[float, Field(ge=0, le=10_000)] | None = None

    model_config = ConfigDict(populate_by_name=True)
    id_prefix = "gpu"

    @model_validator(mode="after")
    def _memory(self) -> GpuSample:
        if None not in (self.mem_used_bytes, self.mem_total_bytes) \
                and self.mem_used_bytes > self.mem_total_bytes:  # type: ignore[operator]
            raise ValueError(f"mem_used_bytes {self.mem_used_bytes} exceeds mem_total_bytes "
                             f"{self.mem_total_bytes}")
        return self


class DeadLetter(Frozen):
    """A record Steward could not accept, kept with the reason and the original bytes."""

    schema_: Literal["steward.deadletter.v1"] = Field("steward.deadletter.v1", alias="schema")
    ts: AwareDatetime
    stage: str
    reason: str
    error_type: str
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    key: str | None = None
    record_index: int | None = None
    payload_b64: str

    model_config = ConfigDict(populate_by_name=True)


def key_of(record: InferenceRecord | MetricPoint | GpuSample) -> str:
    """The Kafka key for telemetry: model/site (GPU samples: site/node), so one (model, site)
    stays in one partition and one processor instance sees all of it."""
    if isinstance(record, GpuSample):
        return f"{record.site}/{record.node}"
    return f"{record.model}/{record.site}"
