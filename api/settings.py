"""Settings of the API/sink deployable (the one process that owns the DuckDB file)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings

from api.fleet_split import SavingsSettings
from steward.auth import TokenSpec
from steward.settings import KafkaSettings, env_config
from steward.tls import ServerTls


class ApiSettings(BaseSettings):
    model_config = env_config()

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    data_dir: Path = Path("data")
    db_file: str = Field("steward.duckdb", pattern=r"^[A-Za-z0-9._-]+$")
    sink_group: str = "steward-sink"
    sink_fetch_min_bytes: int = Field(1 << 20, ge=1)
    sink_fetch_wait_ms: int = Field(200, ge=0, le=10_000)
    """Sinks fetch until this much (bytes) is there or this long (ms) has passed, so one
    store transaction takes many messages (DuckDB pays per transaction, not only per
    row): records are stored at most this much later."""
    capture_reference_rows: int = Field(1000, ge=0)
    """A model version with no uploaded reference gets one from its first N stored
    records (0: never)."""

    gpu_prices_file: Path | None = None
    """The GPU price catalogue (TOML; see config/gpu-prices.toml) that GET /cost prices with."""
    gpu_cost_period_s: int = Field(3600, ge=60)
    """The trailing period the GPU cost gauges on /metrics cover (steward_gpu_cost_usd)."""
    charts_interval_s: float = Field(5.0, ge=0.1, le=3600)
    """How often the API samples its metrics for the chart page (GET /ui)."""
    charts_points: int = Field(360, ge=2, le=100_000)
    """Samples the chart page keeps (360 at 5 s: the last 30 minutes)."""
    store_gauges_ttl_s: float = Field(10.0, ge=0, le=3600)
    """The GPU cost and fleet split gauges aggregate the last period of stored telemetry;
    scrapes within this many seconds of the last computation get its result."""
    fleet_savings: SavingsSettings = Field(default_factory=SavingsSettings)
    """GET /fleet/savings' cloud alternative and throughput assumptions, and the period the
    fleet gauges cover, e.g. STEWARD_FLEET_SAVINGS__ALTERNATIVE_CARD=H100-80GB."""

    tokens: list[TokenSpec] = Field(default_factory=list)
    """Tokens (hashed, as for the collector): reads need the read scope, audit and every
    change the admin scope (docs/security.md). None configured = auth off."""
    tls: ServerTls = Field(default_factory=ServerTls)
    """HTTPS when a certificate and key are set (STEWARD_TLS__CERTFILE, __KEYFILE)."""

    @property
    def db_path(self) -> Path:
        return self.data_dir / self.db_file
