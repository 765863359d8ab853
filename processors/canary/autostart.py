"""Closing the loop: a registered version answering a retraining request starts a rollout.

Drift at a site opens a `steward.retrain.requested`; once the gate lets it out it is on
the actions topic. When a version is registered that names that request's `trigger_id`,
and the model has a rollout template, this proposes `steward.rollout.started` with a
`RolloutSpec` built from the template (baseline: the version that drifted, canary: the new
one), the registration's evaluation metrics, model card and artifact as evidence, and the
lineage ids (retraining request, drift verdicts). The gate decides; its allowed action
comes back on the actions topic and declares the rollout, whose promotion then carries
the same evidence and lineage. Either record may come first (two topics); the pair meets
here, in the rollout processor's state, keyed by model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from steward.schema import EventType, event_id, make_event
from steward.schema.registered import ModelRegistered
from steward.schema.rollout import (
    Limits,
    RolloutMetric,
    RolloutSpec,
    RolloutStarted,
    Step,
    Thresholds,
)

SOURCE = "/steward/processors/rollout"


class RolloutTemplate(BaseModel):
    """How a model's retrained versions are rolled out (per model, in settings)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    targets: list[str] = Field(min_length=1)
    tier: Literal["cloud", "edge"] = "cloud"
    steps: list[Step] = Field(min_length=1)
    interval_s: int = Field(60, ge=1)
    grace_s: float = Field(10.0, ge=0)
    metrics: list[RolloutMetric] | None = None
    """None: a rollout's default metrics (latency, error rate, accuracy)."""
    limits: Limits = Field(default_factory=Limits)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    team: str | None = None
    target: dict[str, Any] | None = None
    """Where the canary serves: {"region", "tier", "accelerator", "memory_gb"}."""
    estimated_usd: float | None = Field(None, ge=0)
    """What serving the rollout costs: the budget policy's `evidence.cost.estimated_usd`."""


@dataclass
class Retrain:
    """An allowed retraining request, waiting for the version that answers it."""

    trigger_id: str
    model: str
    version: str
    verdict_ids: list[str]
    at: datetime
    topic: str
    offset: int


@dataclass
class Loop:
    """What waits to be paired, by retraining trigger id."""

    retrains: dict[str, Retrain] = field(default_factory=dict)
    registered: dict[str, tuple[ModelRegistered, str, int]] = field(default_factory=dict)
    proposed: dict[str, str] = field(default_factory=dict)
    """Trigger id -> the rollout.started proposal id, until the gate answers it."""


def retrain_of(data: dict[str, Any], at: datetime, topic: str,
               offset: int) -> Retrain | None:
    """The allowed `steward.retrain.requested` an action's data describes, if valid."""
    try:
        return Retrain(data["trigger_id"], data["model"], data["version"],
                       [w["verdict_id"] for w in data.get("windows", [])], at, topic, offset)
    except (KeyError, TypeError):
        return None


def rollout_id(model: str, version: str, trigger_id: str) -> str:
    """Deterministic, so a replay proposes the same rollout."""
    return f"{model}-{version}-{event_id('steward.rollout.auto', trigger_id, version)[:8]}"


def pair(loop: Loop, trigger_id: str, templates: dict[str, RolloutTemplate]) -> Any:
    """The `steward.rollout.started` proposal once a retraining request and its version
    have both been seen (and the model has a template); None otherwise."""
    retrain, reg = loop.retrains.get(trigger_id), loop.registered.get(trigger_id)
    if retrain is None or reg is None or trigger_id in loop.proposed:
        return None
    v = reg[0]
    tpl = templates.get(v.model)
    if tpl is None or v.model != retrain.model or v.version == retrain.version:
        return None
    evidence: dict[str, Any] = {"eval": dict(v.eval), "model_card": v.model_card}
    if tpl.estimated_usd is not None:
        evidence["cost"] = {"estimated_usd": tpl.estimated_usd}
    rid = rollout_id(v.model, v.version, trigger_id)
    spec = RolloutSpec(
        rollout_id=rid, model=v.model, baseline_version=retrain.version,
        canary_version=v.version, targets=tpl.targets, tier=tpl.tier, steps=tpl.steps,
        interval_s=tpl.interval_s, grace_s=tpl.grace_s,
        **({"metrics": tpl.metrics} if tpl.metrics else {}), limits=tpl.limits,
        thresholds=tpl.thresholds, team=tpl.team,
        declared_at=max(v.registered_at, retrain.at), evidence=evidence, target=tpl.target,
        artifact=v.artifact, retrain_trigger_id=trigger_id,
        drift_verdict_ids=retrain.verdict_ids)
    data = RolloutStarted(
        rollout_id=rid, model=v.model, version=v.version, baseline_version=retrain.version,
        canary_version=v.version, sites=list(tpl.targets), team=tpl.team, target=tpl.target,
        artifact=v.artifact, retrain_trigger_id=trigger_id,
        drift_verdict_ids=retrain.verdict_ids, evidence=evidence, spec=spec,
        reason=f"{v.model} {v.version} answers retraining request {trigger_id} "
               f"of {retrain.version}")
    event = make_event(EventType.ROLLOUT_STARTED, source=SOURCE,
                       subject=f"{v.model}/{rid}", data=data, key=v.model,
                       time=spec.declared_at, facts=(trigger_id, v.version))
    loop.proposed[trigger_id] = event.get_id()
    return event


def settle(loop: Loop, trigger_id: str) -> None:
    """The gate answered the proposal: nothing of this pair waits any more."""
    for d in (loop.retrains, loop.registered, loop.proposed):
        d.pop(trigger_id, None)


def hold(loop: Loop) -> dict[str, int]:
    """Offsets to replay after a restart so that waiting halves meet again."""
    low: dict[str, int] = {}
    held = [(r.topic, r.offset) for r in loop.retrains.values()]
    held += [(t, o) for _, t, o in loop.registered.values()]
    for topic, offset in held:
        low[topic] = min(offset, low.get(topic, offset))
    return low


def expire(loop: Loop, now: datetime, wait_s: int) -> None:
    """Forget requests no version answered within `wait_s` (event time vs wall clock)."""
    for tid, r in list(loop.retrains.items()):
        if (now - r.at).total_seconds() > wait_s and tid not in loop.proposed:
            del loop.retrains[tid]
    for tid, (v, _, _) in list(loop.registered.items()):
        if (now - v.registered_at).total_seconds() > wait_s and tid not in loop.proposed:
            del loop.registered[tid]
