"""Every Kafka topic Steward uses: its name, key, partition count and payload kind.

Telemetry topics carry *batches*: one Kafka message holds many records that
share a key (model/site), because per-message overhead, not bytes, bounds
throughput. Event topics carry one CloudEvent per message in binary mode.
A deployment-wide `prefix` lets several Steward instances (or test runs) share
one cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from steward.schema import FeatureProfile, GpuSample, InferenceRecord, MetricPoint
from steward.schema.drift import DriftVerdict
from steward.schema.fleet import FleetNode, FleetSighting
from steward.schema.governance import Decision
from steward.schema.gpu import PartitionUsage
from steward.schema.rollout import (
    RolloutAnalysis,
    RolloutMessage,
    VersionSamples,
    VersionUsage,
)

Payload = Literal["batch", "cloudevent", "deadletter"]


@dataclass(frozen=True)
class Topic:
    """A topic's contract. `name` is the un-prefixed base name."""

    name: str
    key: str
    partitions: int
    payload: Payload
    record: type[BaseModel] | None = None
    doc: str = ""

    def full(self, prefix: str = "") -> str:
        return f"{prefix}{self.name}"


INFERENCE = Topic(
    "steward.telemetry.inference.v1", "model/site", 8, "batch", InferenceRecord,
    "Inference records from edge agents and cloud services.",
)
METRICS = Topic(
    "steward.telemetry.metrics.v1", "model/site", 8, "batch", MetricPoint,
    "OTLP metric data points with model/site identity resolved.",
)
GPU = Topic(
    "steward.telemetry.gpu.v1", "site/node", 8, "batch", GpuSample,
    "GPU partition samples (MIG instances, time-slice replicas, whole cards).",
)
PROFILES = Topic(
    "steward.telemetry.profiles.v1", "model/site", 8, "batch", FeatureProfile,
    "Per-window feature profiles from edge agents (sent instead of raw features); same key "
    "and partitions as inference records, so one drift judge sees both of a (model, site).",
)
DRIFT_VERDICTS = Topic(
    "steward.drift.verdicts.v1", "model", 4, "batch", DriftVerdict,
    "One verdict per (model, version, site) window; keyed by model so one trigger sees all "
    "sites.",
)
GPU_USAGE = Topic(
    "steward.gpu.usage.v1", "team", 4, "batch", PartitionUsage,
    "One usage record per GPU partition window, against its promise; keyed by team so one "
    "cost instance sees all of a team's spend.",
)
ROLLOUTS = Topic(
    "steward.rollouts.v1", "model", 4, "batch", RolloutMessage,
    "Rollout declarations and commands (resume, abort); keyed by model and partitioned like "
    "the actions topic, so one rollout instance sees a model's rollouts and their decisions.",
)
ROLLOUT_SAMPLES = Topic(
    "steward.rollout.samples.v1", "model", 4, "batch", VersionSamples,
    "Per (model, version, site) buckets of inference telemetry with raw latencies; keyed by "
    "model so one rollout instance sees every site of a model.",
)
ROLLOUT_USAGE = Topic(
    "steward.rollout.usage.v1", "model", 4, "batch", VersionUsage,
    "GPU partition windows of model versions (cost, starved or oversubscribed), re-keyed by "
    "model from the usage topic (keyed by team) so the rollout judge sees a model's GPUs.",
)
ROLLOUT_ANALYSIS = Topic(
    "steward.rollout.analysis.v1", "model", 4, "batch", RolloutAnalysis,
    "Every rollout analysis run with all its measurements, the ones that led to no action "
    "too; keyed by model. The API stores them (history, Prometheus scores).",
)
FLEET_SIGHTINGS = Topic(
    "steward.fleet.sightings.v1", "model", 4, "batch", FleetSighting,
    "Per (model, version, site, node) buckets of inference telemetry; keyed by model and "
    "partitioned like the actions topic, so one fleet instance sees a model's nodes and "
    "the promotions and rollbacks that say what they should serve.",
)
FLEET_NODES = Topic(
    "steward.fleet.nodes.v1", "model", 4, "batch", FleetNode,
    "Fleet node snapshots (state, versions, hardware, spool backlog, expectation), emitted "
    "on change; the API keeps the latest per node.",
)
PROPOSALS = Topic(
    "steward.events.proposals.v1", "model", 4, "cloudevent", None,
    "Actions processors propose (retrain, promote, roll back, route); the governance gate "
    "decides, and only allowed ones reach the actions topic.",
)
DECISIONS = Topic(
    "steward.governance.decisions.v1", "model", 4, "batch", Decision,
    "One policy decision per proposed action (OPA decision-log shaped), stored in a hash "
    "chain by the API process.",
)
ACTIONS = Topic(
    "steward.events.actions.v1", "model", 4, "cloudevent", None,
    "Actions for the platform: rollbacks, promotions, retraining requests.",
)
ALERTS = Topic(
    "steward.events.alerts.v1", "model", 4, "cloudevent", None,
    "Alerts: breaches and data-quality findings that need a human or a webhook.",
)
DEADLETTER = Topic(
    "steward.deadletter.v1", "source topic", 2, "deadletter", None,
    "Every record Steward rejected, with the reason and the original bytes.",
)

ALL: tuple[Topic, ...] = (INFERENCE, METRICS, GPU, PROFILES, DRIFT_VERDICTS, GPU_USAGE,
                          ROLLOUTS, ROLLOUT_SAMPLES, ROLLOUT_USAGE, ROLLOUT_ANALYSIS,
                          FLEET_SIGHTINGS, FLEET_NODES, PROPOSALS,
                          DECISIONS, ACTIONS, ALERTS, DEADLETTER)
TELEMETRY: tuple[Topic, ...] = (INFERENCE, METRICS, GPU, PROFILES)
EVENTS: tuple[Topic, ...] = (ACTIONS, ALERTS)


def by_name(name: str, prefix: str = "") -> Topic:
    """The topic whose full name is `name` under `prefix`."""
    for topic in ALL:
        if topic.full(prefix) == name:
            return topic
    raise KeyError(f"unknown topic {name!r} (prefix {prefix!r})")
