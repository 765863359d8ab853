"""Settings of the API/sink deployable (the one process that owns the DuckDB file)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings

from steward.auth import TokenSpec
from steward.settings import KafkaSettings, env_config


class ApiSettings(BaseSettings):
    model_config = env_config()

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    data_dir: Path = Path("data")
    db_file: str = Field("steward.duckdb", pattern=r"^[A-Za-z0-9._-]+$")
    sink_group: str = "steward-sink"
    capture_reference_rows: int = Field(1000, ge=0)
    """A model version with no uploaded reference gets one from its first N stored
    records (0: never)."""

    gpu_prices_file: Path | None = None
    """The GPU price catalogue (TOML; see config/gpu-prices.toml) that GET /cost prices with."""
    gpu_cost_period_s: int = Field(3600, ge=60)
    """The trailing period the GPU cost gauges on /metrics cover (steward_gpu_cost_usd)."""

    tokens: list[TokenSpec] = Field(default_factory=list)
    """Tokens (hashed, as for the collector); the /audit routes need one with the admin
    scope. None configured = auth off."""

    @property
    def db_path(self) -> Path:
        return self.data_dir / self.db_file
