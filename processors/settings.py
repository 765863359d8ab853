"""Settings of the processors deployable."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings

from processors.canary_latency import CanarySpec
from processors.drift_judge import DriftSpec
from processors.fleet import FleetSpec
from processors.fleet_sightings import SightingsSpec
from processors.gpu_budget import Budget
from processors.gpu_usage import GpuSpec
from processors.retrain_trigger import TriggerSpec
from processors.rollout import RolloutSettings
from processors.rollout_samples import SamplesSpec
from steward.settings import KafkaSettings, env_config


class GovernanceSettings(BaseModel):
    """Where the gate's policies come from, and what its decision log hides."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rules_dir: Path = Path("rules")
    """Rego policies and their data document, evaluated in-process (regopy)."""
    opa_url: str | None = None
    """An OPA server's base URL (e.g. http://opa:8181): its REST Data API decides instead."""
    opa_timeout_s: float = Field(2.0, gt=0)
    reload_s: float = Field(5.0, gt=0)
    """How often the embedded engine looks for changed rules (a new revision is logged)."""
    masked_fields: list[str] = Field(default_factory=list)
    """JSON pointers into the policy input hidden in the decision log, e.g. "/data/team"."""
    fail_open: list[str] = Field(default_factory=lambda: ["steward.model.rolled_back"])
    """Action types allowed when the engine fails (logged as such); all others fail closed."""


class ProcessorSettings(BaseSettings):
    model_config = env_config()

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    group_prefix: str = "steward-"
    """Consumer group of processor NAME is `{group_prefix}{NAME}`: run more copies to scale."""
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(0, ge=0, le=65535)
    """Serve Prometheus metrics on this port (0: off)."""
    canaries: list[CanarySpec] = Field(default_factory=list)
    """Canaries under watch, e.g. STEWARD_CANARIES='[{"model": "m", "baseline_version": "1",
    "canary_version": "2"}]'."""
    retrain: TriggerSpec = Field(default_factory=TriggerSpec)
    """Debounce and cooldown of retraining requests, e.g. STEWARD_RETRAIN__K=3."""
    drift: DriftSpec = Field(default_factory=DriftSpec)
    """Drift windows, e.g. STEWARD_DRIFT__WINDOW_S=300, STEWARD_DRIFT__MIN_ROWS=50."""
    gpu: GpuSpec = Field(default_factory=GpuSpec)
    """GPU partition windows, thresholds and promises, e.g. STEWARD_GPU__WINDOW_S=60,
    STEWARD_GPU__PROMISES='[{"team": "risk", "compute": 0.5}]'."""
    budgets: list[Budget] = Field(default_factory=list)
    """GPU budgets, e.g. STEWARD_BUDGETS='[{"team": "risk", "usd": 5000, "period": "month"}]'."""
    gpu_prices_file: Path | None = None
    """The GPU price catalogue (TOML; see config/gpu-prices.toml) the budgets, and the cost
    on GPU partition alerts, are priced with."""
    governance: GovernanceSettings = Field(default_factory=GovernanceSettings)
    """The governance gate, e.g. STEWARD_GOVERNANCE__OPA_URL=http://opa:8181."""
    rollout_samples: SamplesSpec = Field(default_factory=SamplesSpec)
    """Buckets the rollout judge reads, e.g. STEWARD_ROLLOUT_SAMPLES__BUCKET_S=10."""
    rollouts: RolloutSettings = Field(default_factory=RolloutSettings)
    fleet_sightings: SightingsSpec = Field(default_factory=SightingsSpec)
    """Buckets the fleet processor reads, e.g. STEWARD_FLEET_SIGHTINGS__BUCKET_S=10."""
    fleet: FleetSpec = Field(default_factory=FleetSpec)
    """Node silences and the straggler grace, e.g. STEWARD_FLEET__OFFLINE_AFTER_S=300."""
    api_url: str = "http://127.0.0.1:8080"
    """Where the drift judge fetches reference datasets."""
    api_token: SecretStr | None = None
    """Token with the read scope for `api_url` (references, GPU cost), when the API has tokens."""
    api_ca_bundle: Path | None = None
    """PEM CA bundle to check the API's HTTPS certificate against (private CA, self-signed)."""
