"""GPU partitions out: per-window usage against the promise, and the alerts it raises.

A `PartitionUsage` is one partition's window: what it holds of the card (compute in
sevenths under MIG, 1/replicas under time-slicing), what it used of that, the same
in card terms (so a 1g and a 3g slice compare), and what it was promised. Time-sliced
replicas whose values are only the device's value copied are marked `values_copied`
with no per-replica use: the device's use is carried once, never summed per pod.
Records are keyed by team so one cost/budget instance sees all of a team.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from steward.schema.events import Window
from steward.schema.records import Frozen, Name, Tier

Ratio = Annotated[float, Field(ge=0)]
BreachKind = Literal["starved", "oversubscribed", "memory_pressure"]


class PartitionUsage(Frozen):
    """One partition's use in one window, beside its share of the card and its promise."""

    schema_: Literal["steward.gpu.usage.v1"] = Field("steward.gpu.usage.v1", alias="schema")
    id: str
    partition: str
    """`node/gpu_uuid/mig<id>`, `node/gpu_uuid/ts/<namespace>/<pod>` or `node/gpu_uuid`."""
    window: Window
    site: Name
    tier: Tier
    node: Name
    gpu_uuid: str
    card: str
    profile: str
    instance_id: int | None = None
    pod: str | None = None
    namespace: str | None = None
    model: Name | None = None
    version: Name | None = None
    team: Name | None = None
    samples: int
    compute_share: Ratio
    """The partition's share of the card's compute (3g = 3/7; a time-slice replica 1/N)."""
    memory_share: Ratio
    compute_use: Ratio | None
    """Mean busy share of the partition itself (None: unknown, e.g. copied values)."""
    compute_card_use: Ratio | None
    """compute_use x compute_share: the card it used, comparable across profile sizes."""
    dram_use: Ratio | None = None
    mem_used_max_bytes: int | None = None
    mem_total_bytes: int | None = None
    mem_use_max: Ratio | None = None
    power_watts_mean: Ratio | None = None
    promised_compute: Ratio
    promised_memory_bytes: int | None = None
    latency_slo_ms: float | None = None
    compute_vs_promise: Ratio | None = None
    """compute_card_use / promised_compute."""
    values_copied: bool = False
    device_compute_use: Ratio | None = None
    """Time-slicing: the device's busy share, reported once per card (not per pod)."""
    allocated_usd: Ratio | None = None
    """The window's cost of the share held, used or not, priced from the catalogue at the
    site (None: not priced): what the rollout judge's measured cost per 1,000 sums."""
    used_usd: Ratio | None = None
    breaches: list[BreachKind] = Field(default_factory=list)
    """The alerts this window raised about the partition (`oversubscribed`: about its
    card): its health against the promise, carried so a consumer need not join alerts."""

    model_config = {"populate_by_name": True}


class PartitionBreach(Frozen):
    """Data of `steward.gpu.partition.*`: which promise, what was measured, the thresholds."""

    schema_: Literal["steward.gpu.breach.v1"] = Field("steward.gpu.breach.v1", alias="schema")
    kind: BreachKind
    partition: str
    """The partition, or for `oversubscribed` the card (`node/gpu_uuid`)."""
    site: Name
    node: Name
    gpu_uuid: str
    card: str
    profile: str | None = None
    model: Name | None = None
    version: Name | None = None
    team: Name | None = None
    window: Window
    reason: str
    measured: float
    threshold: float
    compute_use: float | None = None
    compute_share: float | None = None
    promised_compute: float | None = None
    partitions: list[str] = Field(default_factory=list)
    """`oversubscribed`: every partition whose promise counts."""
    compute_card_use: float | None = None
    """Share of the card the partition used (None: unknown, e.g. copied values)."""
    mem_use_max: float | None = None
    usd_per_gpu_hour: float | None = None
    """The card's price from the catalogue at the site (None: the catalogue has none, and
    so are the dollar figures)."""
    card_usd: float | None = None
    """The whole card's cost for the window."""
    allocated_usd: float | None = None
    """The window's cost of what the partition holds (`oversubscribed`: of every partition
    on the card), used or not: what a policy weighs against the alert."""
    used_usd: float | None = None
    idle_usd: float | None = None
    """allocated - used: paid for and not used (None when the use is unknown)."""

    model_config = {"populate_by_name": True}


class BudgetAlert(Frozen):
    """Data of `steward.budget.exceeded` and `steward.budget.forecast_exceeded`."""

    schema_: Literal["steward.budget.alert.v1"] = Field("steward.budget.alert.v1",
                                                       alias="schema")
    kind: Literal["exceeded", "forecast"]
    scope: Literal["team", "model"]
    name: Name
    period: Literal["day", "month"]
    period_start: datetime
    period_end: datetime
    budget_usd: float
    spent_usd: float
    """Allocated GPU cost so far in the period, up to the window that tipped it."""
    forecast_usd: float
    """spent / elapsed share of the period: where the period ends at this rate."""
    window: Window
    reason: str

    model_config = {"populate_by_name": True}
