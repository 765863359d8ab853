"""Processors by name: config and the CLI refer to them by these names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from processors.canary_latency import CanaryLatency
from processors.drift.evidently_judge import EvidentlyJudge
from processors.drift_judge import DriftJudge
from processors.fleet import Fleet
from processors.fleet_sightings import FleetSightings
from processors.governance_gate import GovernanceGate, gate_from
from processors.gpu_budget import GpuBudget
from processors.gpu_usage import GpuUsage
from processors.references import ApiReferences
from processors.retrain_trigger import RetrainTrigger
from processors.rollout import Rollouts
from processors.rollout_samples import RolloutSamples
from processors.rollout_usage import RolloutUsage
from processors.settings import ProcessorSettings
from steward.bus.composite import Composite
from steward.errors import ConfigError
from steward.gpu.prices import Catalogue
from steward.stream import Processor
from steward.tls import http_client


def _catalogue(s: ProcessorSettings) -> Catalogue:
    """The price catalogue gpu-usage (alerts carry cost) and gpu-budget price with."""
    return Catalogue.load(s.gpu_prices_file) if s.gpu_prices_file else Catalogue()


def _api(s: ProcessorSettings, timeout: float) -> httpx.Client:
    """A client for the API: its read token and CA bundle, when set."""
    return http_client(timeout=timeout, token=s.api_token, ca_bundle=s.api_ca_bundle)


PROCESSORS: dict[str, Callable[[ProcessorSettings], Processor[Any]]] = {
    "canary-latency": lambda s: CanaryLatency(s.canaries),
    "retrain-trigger": lambda s: RetrainTrigger(s.retrain),
    "gpu-usage": lambda s: GpuUsage(s.gpu, _catalogue(s)),
    "gpu-budget": lambda s: GpuBudget(s.budgets, _catalogue(s)),
    "governance-gate": lambda s: GovernanceGate(gate_from(s.governance, s.api_url,
                                                          _api(s, 5.0)),
                                                s.governance.reload_s),
    "rollout-samples": lambda s: RolloutSamples(s.rollout_samples),
    "fleet-sightings": lambda s: FleetSightings(s.fleet_sightings),
    "fleet": lambda s: Fleet(s.fleet),
    "rollout-usage": lambda s: RolloutUsage(),
    "rollout": lambda s: Rollouts(s.rollouts),
    "drift-judge": lambda s: DriftJudge(s.drift, ApiReferences(s.api_url, _api(s, 30.0)),
                                        EvidentlyJudge(calibrated=s.drift.calibrated)),
}


def build(name: str, settings: ProcessorSettings) -> Processor[Any]:
    """The processor `name`, or for `a+b+...` those processors run as one consumer
    (`steward.bus.composite`: one decode of the stream they share)."""
    if "+" in name:
        return Composite([build(part, settings) for part in name.split("+")])
    try:
        factory = PROCESSORS[name]
    except KeyError:
        raise ConfigError(f"unknown processor {name!r}; known: {', '.join(sorted(PROCESSORS))}") \
            from None
    return factory(settings)
